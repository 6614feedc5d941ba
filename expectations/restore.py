"""The restore proof every revert ends with (steps, migration steps, rollback flows).

What it proves, against the baseline taken just before the change
(`tasks/database/restore_baseline.py`; docs/restore_proof.md says it in full):

* schema: every catalog object of the tables the change names, and all of the application's
  code, schemas and relations, is exactly as before: definitions, validity, enabled state,
  owner, privileges; an object created since is gone (objects of a later change that is still
  applied excepted, and named);
* data: every row of the tables the change names is, key by key, what it was — except rows
  the application changed meanwhile, which are named and counted (changed, deleted,
  inserted). When the application's writes are known (setting RESTORE_APP_WRITES_SQL: a
  query listing the (table, key) the application wrote), a differing row the application did
  not write fails the proof; otherwise the differing rows are reported, not verified.

A baseline of no table proves nothing and fails, naming the cause.
"""
from __future__ import annotations

import psycopg

from runbook.gate_registry import gate
from runbook.gate_result import GateResult
from runbook.pg import connect
from runbook.settings import get_settings
from runbook.tasks.database import restore_baseline
from runbook.tasks.database.restore_baseline import Baseline


def app_writes(url: str, since: str) -> set[tuple[str, str]] | None:
    """(table, key) of every row the application wrote since `since`, from the configured
    write log; None when no write log is configured."""
    query = get_settings().restore_app_writes_sql
    if not query:
        return None
    with connect(url) as conn:
        return {(str(t) if "." in str(t) else f"public.{t}", str(k))
                for t, k in conn.execute(query, {"since": since}).fetchall()}


@gate("restored", checks="after a revert, the catalog of the tables the change names and of the app's code "
      "equals the baseline taken before it, and every row the application did not write meanwhile is unchanged",
      runs_in="every revert: migration steps, the staging rehearsal, the rollback flows")
def restore_proof(url: str, baseline: Baseline | None, name: str | None = None,
                  writes: set[tuple[str, str]] | None = None) -> GateResult:
    name = name or f"restored:{baseline.label if baseline else '?'}"
    expectation = ("the catalog of every object the change touched equals the baseline, and every row "
                   "of the tables it names is unchanged unless the application wrote it meanwhile")
    if baseline is None or not baseline.tables:
        cause = ("no restore baseline was recorded before the change" if baseline is None
                 else "the baseline names no table")
        return GateResult(name, False, expectation, observed=cause, expected="a baseline of at least one table",
                          sample=[{"what": "baseline", "detail": cause}])
    later = restore_baseline.changed_later(url, baseline)
    now = restore_baseline.catalog_snapshot(url, [t for t in baseline.tables if _exists(url, t)])
    schema = restore_baseline.catalog_differences(
        {k: v for k, v in baseline.catalog.items() if k not in later},
        {k: v for k, v in now.items() if k not in later}, scope_all=True)
    rows = restore_baseline.row_differences(url, baseline)
    log_error = None
    if writes is None:
        try:
            writes = app_writes(url, baseline.taken_at)
        except psycopg.Error as exc:     # a write log that cannot be read proves nothing
            log_error = f"the application's write log (RESTORE_APP_WRITES_SQL) failed: {type(exc).__name__}"
            writes = set()
    differing = [(kind, t, k) for kind in ("changed", "deleted", "inserted") for t, k in getattr(rows, kind)]
    unexplained = [d for d in differing if writes is not None and (d[1], d[2]) not in writes]
    meanwhile = [d for d in differing if writes is None or (d[1], d[2]) in writes]
    sample = [{"what": "catalog", "object": d["object"], "before": d["before"], "after": d["after"]}
              for d in schema]
    if log_error:
        sample.append({"what": "write log", "detail": log_error})
    sample += [{"what": f"row {kind}, not written by the application", "table": t, "key": k}
               for kind, t, k in unexplained[:20]]
    counts = {kind: sum(1 for d in meanwhile if d[0] == kind) for kind in ("changed", "deleted", "inserted")}
    return GateResult(
        name, passed=not sample, expectation=expectation,
        observed=f"{len(schema)} catalog objects differ, {len(unexplained)} rows differ unexplained",
        expected="0 catalog objects differ, 0 rows differ unexplained",
        sample=sample,
        details={"tables": sorted(baseline.tables), "rows_compared": rows.rows_compared,
                 "objects_compared": len(baseline.catalog) - len(later & set(baseline.catalog)),
                 "left_to_later_changes": sorted(later)[:20],
                 "written_by_application_meanwhile": counts,
                 "written_sample": [{"table": t, "key": k, "row": kind} for kind, t, k in meanwhile[:10]],
                 "verified_against_write_log": writes is not None})


def _exists(url: str, table: str) -> bool:
    with connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]


def surviving_columns_unchanged(name: str, before: dict[str, dict[str, str]],
                                after: dict[str, dict[str, str]]) -> GateResult:
    """For a migration applied before restore baselines existed: every column present before
    and after a revert has the same per-column checksum (a quiet database only)."""
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
