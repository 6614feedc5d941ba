"""The rollback flows' restore proof: every surviving column value unchanged."""
from __future__ import annotations

from runbook.gate_result import GateResult


def restore_proof(name: str, before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]
                  ) -> GateResult:
    changed = []
    for t in sorted(set(before) | set(after)):
        b, a = before.get(t), after.get(t)
        if b is None or a is None:
            changed.append({"table": t, "column": "*", "before": "present" if b else "absent",
                            "after": "present" if a else "absent"})
            continue
        for c in sorted(set(b) & set(a)):
            if b[c] != a[c]:
                changed.append({"table": t, "column": c, "before": b[c], "after": a[c]})
    return GateResult(name=name, passed=not changed,
                      expectation="every value of every column present before and after is unchanged",
                      observed=f"{len(changed)} columns differ", expected="0 columns differ",
                      sample=changed[:20])
