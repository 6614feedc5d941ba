"""Gate of the authorization change (plan Week 0 Day 5, Task 3.2), through the real API:
a caller without the right gets 403 and nothing runs; a caller with it gets data.

"Nothing runs" is read from the target's audit_log: the orchestrator writes one
"pattern.execute" row per run it starts and one "pattern.denied" row per refusal, with the
caller's rights. Each probe caller also holds a unique right that grants nothing
(`runbook-probe:<nonce>`), so its rows are found exactly even while other traffic runs.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from runbook.expectations.smoke import pattern_ids, sample_inputs
from runbook.gate_result import GateResult
from runbook.pg import connect

RIGHTS_HEADER = "X-DawsOS-Rights"


def _audit(database_url: str, marker: str) -> dict[str, int]:
    with connect(database_url) as conn:
        rows = conn.execute("SELECT action, count(*) FROM audit_log WHERE details -> 'rights' ? %s"
                            " GROUP BY action", (marker,)).fetchall()
    return {a: n for a, n in rows}


def authorization_gate(base_url: str, database_url: str, checkout: Path,
                       headers: dict | None = None) -> GateResult:
    ids = pattern_ids(checkout)
    pid = "portfolio_overview" if "portfolio_overview" in ids else ids[0]
    other = next((i for i in ids if i != pid), "another_pattern")
    inputs = sample_inputs(database_url)
    nonce = uuid.uuid4().hex[:12]
    base = {k: v for k, v in (headers or {}).items() if k.lower() != RIGHTS_HEADER.lower()}
    # (caller, rights header or None, marker, expected status, expected audit rows)
    cases = [
        ("no rights header", None, None, 403, None),
        ("right to another pattern only", f"pattern:{other},runbook-probe:{nonce}-denied",
         f"runbook-probe:{nonce}-denied", 403, {"pattern.denied": 1}),
        (f"right pattern:{pid}", f"pattern:{pid},runbook-probe:{nonce}-allowed",
         f"runbook-probe:{nonce}-allowed", 200, {"pattern.execute": 1}),
    ]
    problems, seen = [], []
    with httpx.Client(timeout=60) as client:
        for caller, rights, marker, status, audit in cases:
            h = dict(base) if rights is None else {**base, RIGHTS_HEADER: rights}
            r = client.post(f"{base_url}/api/patterns/{pid}/execute", json={"inputs": inputs}, headers=h)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            got_data = bool(body.get("data"))
            rows = _audit(database_url, marker) if marker else None
            seen.append({"caller": caller, "status": r.status_code, "data": got_data, "audit": rows})
            if r.status_code != status:
                problems.append({"caller": caller, "problem": f"HTTP {r.status_code}, expected {status}"})
            if got_data != (status == 200):
                problems.append({"caller": caller, "problem": "got data" if got_data else "got no data"})
            if audit is not None and rows != audit:
                problems.append({"caller": caller, "problem": f"audit_log rows {rows}, expected {audit}"})
    return GateResult(
        name="security:authorization", passed=not problems,
        expectation=f"a caller without patterns:execute or pattern:{pid} gets 403 and runs nothing "
                    "(no pattern.execute audit row); a caller with pattern:<id> gets data",
        observed=f"{len(problems)} problems", expected="0 problems", sample=problems,
        details={"pattern": pid, "callers": seen})
