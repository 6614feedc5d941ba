"""Re-checked by the scheduled verification: every change set a Week 3-4 flow merged (and no
rollback took out) is still in what the environment serves, and not reverted since."""
from __future__ import annotations

from runbook.context import RunContext
from runbook.expectations.deployed import served_checkout
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.tasks.code import git_ops

MERGED_SQL = """
    SELECT flow_name, data->>'commit', data->'report'->>'change_ref'
      FROM (SELECT DISTINCT ON (flow_run_id, step) flow_name, status, data
              FROM runbook.run_steps WHERE step = 'code:change-set'
             ORDER BY flow_run_id, step, id DESC) last
     WHERE status = 'applied' AND data->>'commit' IS NOT NULL
"""


def merged_change_sets(url: str) -> list[dict]:
    """(flow, merge commit, change_ref) of every change set applied and not reverted."""
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('runbook.run_steps')").fetchone()[0] is None:
            return []
        return [{"flow": f, "commit": c, "change_ref": r} for f, c, r in conn.execute(MERGED_SQL).fetchall()]


@gate('change-set:deployed', checks='every change set merged and not rolled back is in the served '
      'commit and not reverted since', runs_in='scheduled verification')
def change_sets_deployed(ctx: RunContext, merged: list[dict] | None = None) -> GateResult:
    merged = merged_change_sets(ctx.database_url) if merged is None else merged
    served = git_ops.head(served_checkout(ctx))
    reverted = git_ops.reverted_commits(ctx.repo, served)
    missing = [{**m, "problem": "reverted since" if m["commit"] in reverted else "not in the served commit"}
               for m in merged
               if m["commit"] in reverted or not git_ops.is_ancestor(ctx.repo, m["commit"], served)]
    return GateResult("change-set:deployed", bool(merged) and not missing,
                      f"the {len(merged)} merged change sets are in the served commit {served[:12]}",
                      observed=f"{len(missing)} missing" if merged else "no merged change set in the ledger",
                      expected="0 missing", sample=missing[:10])
