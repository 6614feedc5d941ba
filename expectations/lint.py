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


@gate('squawk', checks='squawk reports 0 warnings on every section of the migration as executed (a missing, crashing or silent squawk fails)',
      runs_in="every plan day's preflight, per migration")
def lint_migration(migration: Migration, lock_timeout_ms: int = 2000,
                   pg_version: str = "15.0", url: str | None = None) -> GateResult:
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
        proc = subprocess.run([squawk_binary(), "--reporter", "json", f"--pg-version={pg_version}",
                               *map(str, paths)], capture_output=True, text=True)
        try:
            raw = json.loads(proc.stdout or "[]")
        except json.JSONDecodeError:
            raw = [{"file": "?", "rule_name": "squawk-error", "message": proc.stderr.strip()[:500]}]
    for v in raw:
        findings.append({"file": Path(v.get("file", "?")).name, "line": v.get("line"),
                         "rule": v.get("rule_name"), "message": v.get("message")})
    return GateResult(name=f"squawk:{migration.id}", passed=not findings,
                      expectation="squawk reports 0 warnings on every section as executed",
                      observed=len(findings), expected=0, sample=findings[:10])
