"""The change-set mechanism on the demo's layout: the team's branches built from the patch
series on the Weeks 0-1 code, merged against their fork point on each environment (staging and
production hold the same code as different commits), and a missing change set refused in
preflight with nothing changed. Real git, real PostgreSQL, real Prefect."""
from __future__ import annotations

import pytest

from runbook.demo.change_sets import BASE_BRANCH, CHANGE_SETS, plan_code_updates
from runbook.errors import GateFailed
from runbook.tasks.code import git_ops

ORCHESTRATOR = "backend/app/core/pattern_orchestrator.py"


def commit_edit(repo, ref: str, path: str, old: str, new: str, message: str, tmp_path) -> str:
    """A commit on top of `ref` replacing `old` by `new` in `path` (HEAD untouched)."""
    wt = git_ops.worktree(repo, tmp_path / f"edit-{abs(hash((ref, message)))}", ref)
    text = (wt / path).read_text()
    assert old in text
    (wt / path).write_text(text.replace(old, new, 1))
    commit = git_ops.commit_all(wt, message)
    git_ops.remove_worktree(repo, wt)
    return commit


def test_the_base_branch_is_the_weeks_0_1_code(week3_target):
    repo = week3_target.repo
    updates = [name for name, _ in plan_code_updates()]
    assert updates == ["rename", "pool-config", "dedupe-schema", "simpleeval", "authorization",
                       "panels", "input-schemas", "frontend-panels"]
    orchestrator = git_ops.git(repo, "show", f"{BASE_BRANCH}:{ORCHESTRATOR}")
    assert "simple_eval" in orchestrator or "SimpleEval" in orchestrator
    assert "eval(safe_condition" not in orchestrator
    shipped = [cs.branch for cs in CHANGE_SETS if cs.patches]
    for branch in shipped:        # each stacks on the one before
        assert git_ops.git(repo, "merge-base", "--is-ancestor", BASE_BRANCH, branch, check=False) == ""


def test_a_change_set_cut_from_one_environment_merges_onto_the_other(week3_target, tmp_path):
    """Staging and production got the same update as two commits; the team branched from
    staging's and edited the very next line. git's own merge base (the older common ancestor)
    sees a conflict there; merged against its fork point it is clean on both."""
    repo = week3_target.repo
    line = "from __future__ import annotations\n"
    same = ("# the same update, made on each environment\n", )
    staging = commit_edit(repo, BASE_BRANCH, ORCHESTRATOR, line, line + same[0], "update (staging)", tmp_path)
    production = commit_edit(repo, BASE_BRANCH, ORCHESTRATOR, line, line + same[0], "update (production)", tmp_path)
    assert staging != production
    team = commit_edit(repo, staging, ORCHESTRATOR, same[0], same[0] + "# the team's change\n", "team", tmp_path)
    assert git_ops.merge_conflicts(repo, production, team) == []
    raw = git_ops.git(repo, "merge-tree", "--write-tree", "--name-only", "--no-messages", production, team,
                      check=False)
    assert ORCHESTRATOR in raw                         # git's own merge base would conflict
    wt = git_ops.worktree(repo, tmp_path / "prod", production)
    merged = git_ops.merge(wt, team, "merge the team's change")
    assert git_ops.parents(repo, merged) == [production, team]
    assert git_ops.git(repo, "rev-parse", f"{merged}^{{tree}}") == git_ops.git(repo, "rev-parse", f"{team}^{{tree}}")
    git_ops.remove_worktree(repo, wt)


@pytest.mark.gate_fails("change-set:ref")
@pytest.mark.usefixtures("prefect_server")
def test_a_missing_change_set_fails_preflight_and_changes_nothing(week3_target, slack_standin):
    from runbook.flows.week3.day1_2 import reliability_fixes

    before = git_ops.head(week3_target.deploy["staging"])
    with pytest.raises(GateFailed) as failed:
        reliability_fixes(environment="staging", change_ref="plan/no-such-change-set")
    assert failed.value.result.name == "change-set:ref"
    assert failed.value.result.observed == "plan/no-such-change-set"
    assert git_ops.head(week3_target.deploy["staging"]) == before
    assert not git_ops.ref_exists(week3_target.repo, "runbook/staging")
    [alert] = slack_standin.requests
    assert "change-set:ref" in str(alert)
