"""`runbook demo` as a user runs it: a subprocess on a fresh workspace, then again on the reused
one. The terminal shows progress and results only (no traceback, no library log lines), the
details are in the log file it names, and nothing of the workspace keeps running afterwards."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from workspace_processes import workspace_processes

from runbook.plan import PLAN

RUNBOOK = str(Path(sys.executable).parent / "runbook")
# a library's log line: "12:42:06.400 | INFO    | great_expectations..." or "INFO:name:..."
LIBRARY_LINE = re.compile(r"\|\s*(INFO|DEBUG|WARNING|ERROR)\s*\||^(INFO|DEBUG|WARNING):", re.MULTILINE)

# a hang guard, not a benchmark: the whole plan runs, then again in part (~10 min on a busy machine)
pytestmark = pytest.mark.timeout(1800)


def demo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLACK_", "TARGET_"))
           and k not in ("DATABASE_URL", "STAGING_DATABASE_URL", "RUNBOOK_WORKSPACE", "BACKUP_DIR")}
    return env


def run_demo(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RUNBOOK, "demo", "--workspace", str(workspace), "--rows", "600", *args],
                          env=demo_env(), cwd=workspace.parent, capture_output=True, text=True, timeout=1500, check=False)


def assert_quiet_and_clean(proc: subprocess.CompletedProcess, workspace: Path) -> Path:
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 0, shown[-3000:]
    assert "Traceback" not in shown
    assert not LIBRARY_LINE.search(shown), LIBRARY_LINE.search(shown).group(0)
    assert "XDG_RUNTIME_DIR" not in shown and "great_expectations" not in shown
    assert re.search(r"portfolio_overview\s+│ ok", proc.stdout)
    log = Path(re.search(r"details: (\S+\.log)", proc.stdout).group(1))
    assert log.is_file() and log.is_relative_to(workspace)
    assert "week0-day1-2" in log.read_text(errors="replace")       # the details went there
    return log


def test_demo_is_quiet_stops_everything_reruns_and_keeps_on_request():
    base = Path(tempfile.mkdtemp(prefix="rbdemo-"))    # short: PostgreSQL's socket path is bounded
    workspace = base / "ws"
    try:
        first = run_demo(workspace)
        assert_quiet_and_clean(first, workspace)
        assert "built in" in first.stdout and "embedded PostgreSQL stopped" in first.stdout
        assert workspace_processes(workspace) == []
        assert first.stdout.count("completed") >= 2 * len(PLAN)           # every day, both environments
        # again on the reused workspace (reset to its seed: the plan runs again from the start,
        # here through Week 0 Day 1-2), keeping PostgreSQL this time, until `runbook demo --stop`
        second = run_demo(workspace, "--keep", "--through", "week0-day1-2")
        assert_quiet_and_clean(second, workspace)
        assert "reused, reset to its seed" in second.stdout
        assert second.stdout.count("completed") >= 2 and "▶ Week 0 Day 3-4" not in second.stdout
        assert "kept running" in second.stdout and "runbook demo --stop" in second.stdout
        assert [p for p in workspace_processes(workspace) if "postgres" in p]
        assert not [p for p in workspace_processes(workspace) if "postgres" not in p]
        stopped = subprocess.run([RUNBOOK, "demo", "--workspace", str(workspace), "--stop"],
                                 env=demo_env(), capture_output=True, text=True, timeout=120, check=False)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
        assert workspace_processes(workspace) == []
    finally:
        subprocess.run([RUNBOOK, "demo", "--workspace", str(workspace), "--stop"], env=demo_env(),
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)




def test_drill_fails_a_gate_for_a_real_reason_rolls_back_and_the_corrected_run_passes():
    base = Path(tempfile.mkdtemp(prefix="rbdrill-"))
    workspace = base / "ws"
    try:
        proc = run_demo(workspace, "--drill")
        out = " ".join(proc.stdout.split())          # as the terminal wraps it, unwrapped
        assert proc.returncode == 0, (out + proc.stderr)[-3000:]
        assert "Traceback" not in proc.stdout + proc.stderr
        # the failing gate, with its sample: the late commit's file and line
        assert "gate pattern-names FAILED" in out and "holding_d" in out and "qty_open" in out
        # the code steps rolled back, newest first
        assert "rolled back, newest first: code:frontend-panels → code:input-schemas → code:panels" in out
        assert re.search(r"restore proof: deployed commit (\w+) == \1 .* restored", out)
        # the alert as sent (no Slack configured: the log's copy), then the corrected run
        assert "Slack message as sent" in out and "Gate failed: pattern-names" in out
        assert "corrected run: completed" in out
        assert workspace_processes(workspace) == []
    finally:
        subprocess.run([RUNBOOK, "demo", "--workspace", str(workspace), "--stop"], env=demo_env(),
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(base, ignore_errors=True)
