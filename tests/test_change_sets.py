"""Change sets (Weeks 3-4): the team's branch, gated before it merges (ref exists, merges
cleanly, the target's own suite passes on the merge result), merged as one commit, deployed,
and taken back out by reverting that merge. Real git, real API, real PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest

from runbook.context import build_context
from runbook.expectations.change_set import change_set_gates
from runbook.expectations.week3.still_deployed import change_sets_deployed
from runbook.tasks.code import git_ops
from runbook.tasks.steps.code_update import change_set_step
from runbook.tasks.target.deploy import deploy, deployed_commit, shutdown

TEST_FILE = "backend/tests/test_change_set_probe.py"


def branch_with(repo: Path, name: str, files: dict[str, str], base: str = "HEAD") -> str:
    """A branch `name` off `base` that writes `files`, committed; HEAD of the repo is kept."""
    wt = repo.parent / f"wt-{name.replace('/', '-')}"
    git_ops.git(repo, "worktree", "add", "-q", "-b", name, str(wt), base)
    for rel, text in files.items():
        (wt / rel).parent.mkdir(parents=True, exist_ok=True)
        (wt / rel).write_text(text)
    git_ops.commit_all(wt, f"test: {name}")
    git_ops.remove_worktree(repo, wt)
    return git_ops.git(repo, "rev-parse", name)


@pytest.fixture
def ctx(target):
    c = build_context("test-change-sets", "staging", "cs0000000000")
    yield c
    shutdown(c)


def gate(results, name):
    return next(r for r in results if r.name == name)


def test_a_good_change_set_passes_its_gates_merges_and_reverts(ctx, target):
    branch_with(target.repo, "plan/good", {TEST_FILE: "def test_probe():\n    assert 1 + 1 == 2\n"})
    ctx.parameters = {"change_ref": "plan/good"}
    results = change_set_gates(ctx)
    assert [r.name for r in results if r.passed] == [
        "change-set:ref", "change-set:merges-cleanly", "change-set:target-tests"]
    before = deployed_commit(ctx)
    step = change_set_step("code:change-set", "test change set")
    data = step.apply(ctx, None)
    merged = deployed_commit(ctx)
    assert data["commit"] == merged and len(git_ops.parents(target.repo, merged)) == 2
    assert (ctx.deploy_dir / TEST_FILE).is_file()
    assert git_ops.git(target.repo, "rev-parse", "runbook/staging") == merged
    step.revert(ctx, data)
    assert deployed_commit(ctx) == before and not (ctx.deploy_dir / TEST_FILE).exists()
    branch_head = git_ops.git(target.repo, "rev-parse", "runbook/staging")
    assert git_ops.changed_files(target.repo, before, branch_head) == []     # the revert undid the merge


@pytest.mark.gate_fails("change-set:deployed")
def test_verification_finds_a_merged_change_set_deployed_and_names_a_reverted_one(ctx, target):
    """The scheduled verification's re-check: a change set the ledger says is merged must be in
    what the service runs; once reverted behind the ledger's back it is named; none is a failure."""
    branch_with(target.repo, "plan/kept", {TEST_FILE: "def test_probe():\n    assert True\n"})
    ctx.parameters = {"change_ref": "plan/kept"}
    step = change_set_step("code:change-set", "test change set")
    data = step.apply(ctx, None)
    merged = [{"flow": "week3-test", "commit": data["commit"], "change_ref": "plan/kept"}]
    assert change_sets_deployed(ctx, merged).passed
    step.revert(ctx, data)                                    # back on the commit before the merge
    gone = change_sets_deployed(ctx, merged)
    assert not gone.passed and gone.sample == [{**merged[0], "problem": "not in the served commit"}]
    deploy(ctx, git_ops.git(target.repo, "rev-parse", "runbook/staging"))   # the merge, then its revert
    reverted = change_sets_deployed(ctx, merged)
    assert not reverted.passed and reverted.sample == [{**merged[0], "problem": "reverted since"}]
    assert not change_sets_deployed(ctx, []).passed           # nothing to check is not a pass


@pytest.mark.gate_fails("change-set:ref")
def test_a_missing_ref_fails_closed(ctx):
    ctx.parameters = {"change_ref": "plan/never-pushed"}
    [result] = change_set_gates(ctx)
    assert result.name == "change-set:ref" and not result.passed and result.observed == "plan/never-pushed"


@pytest.mark.gate_fails("change-set:merges-cleanly")
def test_a_conflicting_change_set_is_refused(ctx, target):
    path = "backend/app/services/common.py"
    base = git_ops.head(target.repo)
    text = (target.repo / path).read_text()
    (target.repo / path).write_text("# deployed line\n" + text)
    git_ops.commit_all(target.repo, "test: the deployed code moves on")
    branch_with(target.repo, "plan/conflict", {path: "# the team's line\n" + text}, base=base)
    ctx.parameters = {"change_ref": "plan/conflict"}
    results = change_set_gates(ctx)
    clean = gate(results, "change-set:merges-cleanly")
    assert not clean.passed and clean.sample == [{"file": path}]
    assert "change-set:target-tests" not in [r.name for r in results]


@pytest.mark.gate_fails("change-set:target-tests")
def test_a_change_set_that_breaks_the_targets_suite_is_refused(ctx, target):
    branch_with(target.repo, "plan/red", {TEST_FILE: "def test_probe():\n    assert 1 + 1 == 3\n"})
    ctx.parameters = {"change_ref": "plan/red"}
    tests = gate(change_set_gates(ctx), "change-set:target-tests")
    assert not tests.passed and tests.observed == "exit code 1"
    assert "test_probe" in tests.details["output_tail"]
    assert deployed_commit(ctx) == git_ops.head(target.repo)      # nothing was deployed
