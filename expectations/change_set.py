"""Gates before a change set is merged (Weeks 3-4): its ref exists, it merges cleanly onto what
the environment runs, and the target's own test suite passes on the merge result (the plan's
"comprehensive testing after updates"). Each fails closed, naming the cause."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from runbook.context import RunContext
from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.target import DAWSOS
from runbook.tasks.code import git_ops
from runbook.tasks.target.deploy import deployed_commit

TEST_TIMEOUT_S = 900
PYTEST_NO_TESTS = 5      # pytest's exit code when it collected nothing


@gate('change-set:ref', checks="the change set's git ref exists in TARGET_REPO",
      runs_in='Weeks 3-4 change-set flows')
@gate('change-set:merges-cleanly', checks='the change set merges onto the deployed commit without conflicts',
      runs_in='Weeks 3-4 change-set flows')
def change_set_gates(ctx: RunContext) -> list[GateResult]:
    ref = ctx.parameters.get("change_ref") or ""
    found = bool(ref) and git_ops.ref_exists(ctx.repo, ref)
    exists = GateResult("change-set:ref", found, "the change set's git ref exists in TARGET_REPO",
                        observed=ref or "(no change_ref)", expected="an existing branch, tag or commit")
    if not found:
        return [exists]
    base = deployed_commit(ctx)
    conflicts = git_ops.merge_conflicts(ctx.repo, base, ref)
    clean = GateResult("change-set:merges-cleanly", conflicts == [],
                       f"{ref} merges onto the deployed commit {base[:12]} without conflicts",
                       observed="no merge base" if conflicts is None else f"{len(conflicts)} conflicting files",
                       expected="0 conflicting files",
                       sample=[{"file": f} for f in (conflicts or [])[:20]])
    if not clean.passed:
        return [exists, clean]
    return [exists, clean, target_tests_gate(ctx, base, ref)]


@gate('change-set:target-tests', checks="the target's own test suite passes on the merge result",
      runs_in='Weeks 3-4 change-set flows')
def target_tests_gate(ctx: RunContext, base: str, ref: str) -> GateResult:
    """The target's own suite on the merge result, in a scratch worktree (nothing deployed)."""
    path = ctx.workspace / "tmp" / f"change-set-tests-{ctx.flow_run_id[:8]}"
    if path.exists():
        git_ops.remove_worktree(ctx.repo, path)
        shutil.rmtree(path, ignore_errors=True)
    wt = git_ops.worktree(ctx.repo, path, base)
    command = [part.replace("{python}", sys.executable) for part in DAWSOS.test_command]
    try:
        git_ops.merge(wt, ref, f"preflight merge of {ref}")
        try:
            proc = subprocess.run(command, cwd=wt, capture_output=True, text=True, timeout=TEST_TIMEOUT_S,
                                  env=_test_environment())
            code, output = proc.returncode, (proc.stdout + proc.stderr)
        except FileNotFoundError as exc:
            code, output = None, f"test command not found: {exc.filename}"
        except subprocess.TimeoutExpired:
            code, output = None, f"test suite did not finish within {TEST_TIMEOUT_S} s"
    finally:
        git_ops.remove_worktree(ctx.repo, wt)
    cause = {0: None, PYTEST_NO_TESTS: "no tests ran", None: output.splitlines()[-1] if output else "?"}
    passed = code == 0
    return GateResult("change-set:target-tests", passed,
                      f"the target's own test suite passes on {ref} merged onto {base[:12]}",
                      observed="passed" if passed else cause.get(code) or f"exit code {code}",
                      expected="exit code 0",
                      details={"command": " ".join(command), "output_tail": output[-4000:]})


def _test_environment() -> dict:
    """The suite runs with a minimal environment: none of the runbook's settings or secrets."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {k: v for k, v in os.environ.items() if k in keep}
