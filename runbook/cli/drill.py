"""`runbook demo --drill`: the release manager's fire drill on the demo workspace.

Week 0 runs on staging; then a late commit lands on staging's deployed code that reintroduces
an old field name in a pattern file (the plan's risk 2, as it happened in the real repository).
Week 1 Days 3-5 then fails its pattern-names gate for that real reason: the drill shows the
failing gate with its sample, the code steps rolled back in reverse order, the proof that
staging is back where the run found it, and the Slack message as sent (the log's copy when no
Slack is configured). A correcting commit follows, and the same run passes."""
from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console
from rich.table import Table

from runbook.plan import WEEK0_DAY1_2, WEEK0_DAY3_4, WEEK0_DAY5, WEEK1_DAY3_5

ENVIRONMENT = "staging"
LATE_FILE = "backend/patterns/holding_deep_dive.json"
LATE_TEXT = ("Lots, price history", "Lots (sorted by qty_open), price history")
# the application's own writes on every request (the run's smoke and probes make requests):
# changed meanwhile by the application, not by the run
APPLICATION_WRITES = frozenset({"audit_log"})


class AlertCopy(logging.Handler):
    """Keeps the alerts the runbook sends (or, with no Slack configured, logs) in this process."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.alerts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "Alert:" in message:
            self.alerts.append(message.split("Alert:", 1)[1].strip())


def late_commit(deploy: Path) -> str:
    """A teammate's commit on staging's deployed code, after Week 0's rename."""
    from runbook.tasks.code import git_ops

    path = deploy / LATE_FILE
    path.write_text(path.read_text().replace(*LATE_TEXT, 1))
    return git_ops.commit_all(deploy, "Holding deep dive: describe the lot ordering")


def reverted_steps(url: str, flow_name: str) -> list[str]:
    """The last failed run's steps, in the order they were reverted."""
    from runbook.tasks.database import ledger

    with ledger.cursor(url) as cur:
        cur.execute("""SELECT step FROM runbook.run_steps WHERE status = 'reverted' AND flow_run_id =
                         (SELECT flow_run_id FROM runbook.run_steps WHERE flow_name = %s ORDER BY id DESC LIMIT 1)
                       ORDER BY id""", (flow_name,))
        return [r["step"] for r in cur.fetchall()]


def gate_table(result) -> Table:
    rows = result.sample or []
    table = Table(*(rows[0].keys() if rows else ["sample"]),
                  title=f"gate {result.name} FAILED — {result.expectation}: observed {result.observed}, "
                        f"expected {result.expected}")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table


def run_drill(console: Console) -> int:
    from runbook.context import build_context
    from runbook.errors import GateFailed
    from runbook.tasks.code import git_ops
    from runbook.tasks.database.checksums import table_checksums
    from runbook.tasks.target.deploy import deployed_commit

    for day in (WEEK0_DAY1_2, WEEK0_DAY3_4, WEEK0_DAY5):
        console.print(f"▶ {day.week} {day.day} — {day.title} on [bold]{ENVIRONMENT}[/]")
        day.load()(environment=ENVIRONMENT, require_approval=False)
    ctx = build_context("drill", ENVIRONMENT, "drill")
    commit = late_commit(ctx.deploy_dir)
    git_ops.set_branch(ctx.repo, f"runbook/{ctx.slot}", commit)
    console.print(f"🔥 drill: a late commit {commit[:12]} reintroduces [bold]qty_open[/] in {LATE_FILE} "
                  "on staging (the plan's risk 2)")
    before = table_checksums(ctx.database_url)
    alerts = AlertCopy()
    logging.getLogger("runbook.notify").addHandler(alerts)
    week1 = WEEK1_DAY3_5.load()
    console.print(f"▶ {WEEK1_DAY3_5.week} {WEEK1_DAY3_5.day} — {WEEK1_DAY3_5.title} on [bold]{ENVIRONMENT}[/]")
    try:
        week1(environment=ENVIRONMENT, require_approval=False)
    except GateFailed as exc:
        console.print(gate_table(exc.result))
    else:
        console.print("[red]drill: the run passed; the late commit was not caught[/]")
        return 1
    finally:
        logging.getLogger("runbook.notify").removeHandler(alerts)
    undone = reverted_steps(ctx.database_url, WEEK1_DAY3_5.flow_name)
    console.print("rolled back, newest first: " + " → ".join(undone) if undone else
                  "rolled back: nothing had been applied")
    now, after = deployed_commit(ctx), table_checksums(ctx.database_url)
    changed = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
    restored = now == commit and set(changed) <= APPLICATION_WRITES
    console.print(f"restore proof: deployed commit {now[:12]} {'==' if now == commit else '!='} {commit[:12]} "
                  f"(before the run); {len(before) - len(changed)}/{len(before)} table checksums equal to "
                  f"before" + (f", changed by the application's requests meanwhile: {', '.join(changed)}"
                               if changed else "") + " — "
                  + ("[green]restored[/]" if restored else "[red]NOT restored[/]"))
    for text in alerts.alerts or ["(no alert was sent)"]:
        console.print("Slack message as sent (Slack not configured: copied from the log):"
                      if alerts.alerts else "Slack message:", style="bold")
        console.print(text, markup=False, highlight=False)
    git_ops.git(ctx.deploy_dir, "revert", "--no-edit", commit)
    fix = git_ops.head(ctx.deploy_dir)
    git_ops.set_branch(ctx.repo, f"runbook/{ctx.slot}", fix)
    console.print(f"✅ correction: commit {fix[:12]} reverts the late commit; running again")
    outcome = week1(environment=ENVIRONMENT, require_approval=False)
    console.print(f"corrected run: [green]{outcome.status}[/] — applied: {', '.join(outcome.applied)}")
    return 0 if restored and outcome.status == "completed" else 1
