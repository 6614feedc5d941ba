"""Preflight lint: squawk over each migration section exactly as the runner executes it."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.tasks.database.migration_files import Migration


def squawk_binary() -> str:
    candidate = Path(sys.executable).parent / "squawk"
    return str(candidate) if candidate.exists() else "squawk"


SQUAWK_TIMEOUT_S = 300


def run_squawk(binary: str, paths: list[Path], pg_version: str) -> list[dict] | str:
    """squawk's findings, or why there are none to trust: a missing, crashing, hanging or
    silent squawk is a cause, never zero findings (it exits 1 with findings, 0 without)."""
    if not paths:
        return "nothing to lint: the migration has no section squawk can read"
    try:
        proc = subprocess.run([binary, "--reporter", "json", f"--pg-version={pg_version}", *map(str, paths)],
                              capture_output=True, text=True, check=False, timeout=SQUAWK_TIMEOUT_S)
    except FileNotFoundError:
        return f"squawk not found ({binary}): install it (pip install squawk-cli)"
    except subprocess.TimeoutExpired:
        return f"squawk did not finish within {SQUAWK_TIMEOUT_S} s"
    said = (proc.stderr.strip().splitlines() or [""])[-1][:300]
    if not proc.stdout.strip():
        return f"squawk printed nothing (exit code {proc.returncode}){': ' + said if said else ''}"
    try:
        raw = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return f"squawk's output is not JSON (exit code {proc.returncode}): {proc.stdout.strip()[:200]}"
    if not isinstance(raw, list) or proc.returncode not in (0, 1) or (proc.returncode == 1) != bool(raw):
        return f"squawk exited {proc.returncode} with {len(raw) if isinstance(raw, list) else 'no'} findings" \
               f"{': ' + said if said else ''}"
    return raw


@gate('squawk', checks='squawk reports 0 warnings on every section of the migration as executed (a missing, crashing or silent squawk fails)',
      runs_in="every plan day's preflight, per migration")
def lint_migration(migration: Migration, lock_timeout_ms: int = 2000,
                   pg_version: str = "15.0", url: str | None = None, squawk: str | None = None) -> GateResult:
    """0 warnings, or a '-- squawk-ignore RULE' on the statement with a reason beside it. A
    generated migration is linted as generated for the database at `url`."""
    findings: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for direction, sections in (("up", migration.up_sections(url)), ("down", migration.down_sections(url))):
            for s in sections:
                if s.is_backfill:
                    continue
                p = Path(tmp) / f"{migration.id}.{direction}.{s.name}.sql"
                p.write_text(s.as_executed(lock_timeout_ms))
                paths.append(p)
        raw = run_squawk(squawk or squawk_binary(), paths, pg_version)
    if isinstance(raw, str):   # the tool could not look: a failed gate naming why
        return GateResult(name=f"squawk:{migration.id}", passed=False,
                          expectation="squawk reports 0 warnings on every section as executed",
                          observed=raw, expected=0, sample=[{"rule": "squawk-error", "message": raw}])
    for v in raw:
        findings.append({"file": Path(v.get("file", "?")).name, "line": v.get("line"),
                         "rule": v.get("rule_name"), "message": v.get("message")})
    return GateResult(name=f"squawk:{migration.id}", passed=not findings,
                      expectation="squawk reports 0 warnings on every section as executed",
                      observed=len(findings), expected=0, sample=findings[:10])
