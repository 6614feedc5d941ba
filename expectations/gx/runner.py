"""Great Expectations plumbing shared by every SQL gate.

One mechanism: a gate is a SQL query whose result rows are the *unexpected* rows; Great
Expectations' `UnexpectedRowsExpectation` validates that it returns none, and the outcome is
turned into a `GateResult` (observed = unexpected row count, expected = 0, sample = a few of
the offending rows as JSON-friendly dicts).

Cost. `UnexpectedRowsExpectation` computes two metrics from its query, each its own statement
(`SELECT COUNT(*) FROM (q)` and `q` itself), so handing it a query over a big table scans that
table twice. By default (`materialize=True`) the gate's query therefore runs exactly once, on the
connection GX itself uses, into a session temp table, and GX validates that temp table; the
table under test is scanned once per gate. `materialize=False` lets GX run the query itself
(two scans; no temp objects — e.g. for a hot standby).

Contexts and datasources are cached per URL within the process; the SQLAlchemy engine behind a
datasource uses one connection per thread (SingletonThreadPool), which is what makes the temp
table (and temp helpers such as `pg_temp.rb_collect`) visible to GX's own queries.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import psycopg
from psycopg import sql

from runbook.errors import RunbookError
from runbook.expectations.gx.values import jsonable, libpq_url, one_line, render, sqlalchemy_url
from runbook.gate_result import GateResult
from runbook.pg import redact

__all__ = [
    "Query",
    "get_runner",
    "jsonable",
    "missing_tables",
    "render",
    "require_tables",
    "run_query_asset_expectation",
    "run_unexpected_rows",
    "sqlalchemy_url",
]

Query = "str | sql.Composable"

_URL_VAR = "RUNBOOK_GX_PG_URL"
_MAX_DETAIL_CHARS = 4000

# GX narrates every ephemeral context at INFO; the runbook reports gates itself
logging.getLogger("great_expectations").setLevel(logging.WARNING)


# --------------------------------------------------------------------------- helpers











# --------------------------------------------------------------------------- runner

@dataclass
class _Runner:
    url: str = field(repr=False)      # carries the password
    context: Any
    datasource: Any
    batch: Any
    engine: Any          # the SQLAlchemy engine GX's execution engine queries through


_runners: dict[str, _Runner] = {}
_runners_lock = threading.Lock()


def get_runner(url: str) -> _Runner:
    """The cached ephemeral GX context + postgres datasource for `url`."""
    sa_url = sqlalchemy_url(url)
    with _runners_lock:
        runner = _runners.get(sa_url)
        if runner is None:
            runner = _runners[sa_url] = _build_runner(sa_url)
        return runner


def _build_runner(sa_url: str) -> _Runner:
    import great_expectations as gx
    from sqlalchemy.pool import SingletonThreadPool

    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet):
            # The URL reaches GX through a config variable: it never lands in GX's config
            # (no secret in a repr) and a unix-socket URL passes (PostgresDsn wants a host).
            context = gx.get_context(mode="ephemeral", runtime_environment={_URL_VAR: sa_url})
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            datasource = context.data_sources.add_postgres(
                name="runbook_pg",
                connection_string="${" + _URL_VAR + "}",
                kwargs={"poolclass": SingletonThreadPool, "pool_size": 8},
            )
            # The batch only anchors validations; each gate's SQL names its own tables.
            asset = datasource.add_query_asset(name="runbook_anchor", query="SELECT 1 AS anchor")
            batch = asset.add_batch_definition_whole_table("all").get_batch()
            engine = datasource.get_execution_engine().engine
    except Exception as exc:  # noqa: BLE001 # GX wraps connection failures in its own types
        raise RunbookError(f"cannot open {redact(sa_url)} for Great Expectations: "
                           f"{one_line(exc)}") from None
    return _Runner(sa_url, context, datasource, batch, engine)


def reset_runners() -> None:
    """Drop cached contexts (and dispose their engines): call before dropping a database."""
    with _runners_lock:
        for runner in _runners.values():
            with contextlib.suppress(Exception):
                runner.engine.dispose()
        _runners.clear()


def dispose_runner(url: str) -> None:
    with _runners_lock:
        runner = _runners.pop(sqlalchemy_url(url), None)
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.engine.dispose()


# --------------------------------------------------------------------------- tables

def missing_tables(url: str, tables: Iterable[str]) -> list[str]:
    """Those of `tables` (names as written, optionally schema-qualified) that do not exist."""
    tables = [t for t in tables if t]
    if not tables:
        return []
    runner = get_runner(url)
    import sqlalchemy as sa

    with runner.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT t, to_regclass(t) IS NOT NULL FROM unnest(CAST(:ts AS text[])) AS t"),
            {"ts": [_regclass_text(t) for t in tables]},
        ).all()
    return [orig for orig, (_, ok) in zip(tables, rows) if not ok]


def _regclass_text(table: str) -> str:
    """A name as the caller wrote it (e.g. `lots` or `public.lots`) → quoted regclass text."""
    parts = table.split(".")
    return ".".join(sql.Identifier(p).as_string(None) for p in parts)


def require_tables(url: str, tables: Iterable[str], *, gate: str) -> None:
    gone = missing_tables(url, tables)
    if gone:
        names = ", ".join(repr(t) for t in gone)
        raise RunbookError(f"gate {gate!r}: table {names} does not exist in {redact(url)}")


def table_ident(table: str) -> sql.Composable:
    """`lots` → "lots", `public.lots` → "public"."lots" (each part quoted)."""
    return sql.Identifier(*table.split("."))


# --------------------------------------------------------------------------- gates

def run_unexpected_rows(
    url: str,
    *,
    name: str,
    expectation: str,
    query: str | sql.Composable,
    sample_size: int = 10,
    expected_hint: Any = 0,
    tables: Sequence[str] = (),
    setup: Sequence[str | sql.Composable] = (),
    materialize: bool = True,
    details: dict[str, Any] | None = None,
) -> GateResult:
    """Validate with GX that `query` returns no rows; its rows are the unexpected rows.

    `tables` are checked to exist first (a missing one is a RunbookError naming it);
    `setup` statements (e.g. temp helper functions) run first on GX's connection.
    """
    import great_expectations as gx
    import sqlalchemy as sa

    if tables:
        require_tables(url, tables, gate=name)
    runner = get_runner(url)
    text = render(query).strip().rstrip(";")
    temp_name = None
    scan_s = None
    try:
        if setup or materialize:
            with runner.engine.connect() as conn:
                for stmt in setup:
                    conn.exec_driver_sql(render(stmt))
                if materialize:
                    temp_name = f"rb_gate_{uuid.uuid4().hex[:12]}"
                    import time

                    t0 = time.perf_counter()
                    conn.exec_driver_sql(
                        f"CREATE TEMP TABLE {temp_name} AS {text}".replace("%", "%%"))
                    scan_s = time.perf_counter() - t0
                conn.commit()
        gx_query = f"SELECT * FROM pg_temp.{temp_name}" if temp_name else text
        # UnexpectedRowsExpectation formats the query with str.format: literal braces double.
        gx_query = gx_query.replace("{", "{{").replace("}", "}}")
        with contextlib.redirect_stdout(io.StringIO()):   # its "{batch} missing" notice
            exp = gx.expectations.UnexpectedRowsExpectation(
                unexpected_rows_query=gx_query, description=expectation)
            res = runner.batch.validate(exp, result_format={"result_format": "COMPLETE"})
    except sa.exc.DBAPIError as exc:
        raise _db_error(exc, name, tables) from None
    finally:
        if temp_name:
            with contextlib.suppress(Exception), runner.engine.connect() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{temp_name}")
                conn.commit()

    failure = _gx_exception(res)
    if failure:
        raise RunbookError(f"gate {name!r}: query failed: {failure}")

    result = res.result or {}
    observed = result.get("observed_value")
    rows = (result.get("details") or {}).get("unexpected_rows") or []
    sample = [{str(k): jsonable(v) for k, v in dict(r).items()} for r in rows[:sample_size]]
    info = _trim(res.to_json_dict())
    info["materialized"] = bool(temp_name)
    if scan_s is not None:
        info["scan_s"] = round(scan_s, 4)
    if details:
        info.update(details)
    return GateResult(
        name=name,
        passed=bool(res.success) and observed == 0,
        expectation=expectation,
        observed=observed,
        expected=expected_hint,
        sample=sample,
        details=info,
    )


def run_query_asset_expectation(
    url: str,
    *,
    name: str,
    expectation: str,
    query: str | sql.Composable,
    gx_expectation: Any,
    observed_from: str = "observed_value",
    expected_hint: Any = None,
    sample_size: int = 10,
) -> GateResult:
    """Validate any GX expectation against the rows of `query` (a GX QueryAsset): for catalog
    checks and the like, where the batch itself is a small query result."""
    runner = get_runner(url)
    asset_name = f"q_{uuid.uuid4().hex[:10]}"
    asset = runner.datasource.add_query_asset(name=asset_name, query=render(query))
    try:
        batch = asset.add_batch_definition_whole_table("all").get_batch()
        with contextlib.redirect_stdout(io.StringIO()):
            res = batch.validate(gx_expectation, result_format={"result_format": "COMPLETE"})
    finally:
        with contextlib.suppress(Exception):
            runner.datasource.delete_asset(asset_name)
    failure = _gx_exception(res)
    if failure:
        raise RunbookError(f"gate {name!r}: query failed: {failure}")
    result = res.result or {}
    unexpected = result.get("partial_unexpected_list") or result.get("unexpected_list") or []
    return GateResult(
        name=name,
        passed=bool(res.success),
        expectation=expectation,
        observed=jsonable(result.get(observed_from)),
        expected=expected_hint,
        sample=[{"value": jsonable(v)} for v in unexpected[:sample_size]],
        details=_trim(res.to_json_dict()),
    )


def fetch_all(url: str, query: str | sql.Composable, params: Any = None) -> list[dict]:
    """Rows of a small (catalog) query as dicts, through the same cached engine."""
    runner = get_runner(url)
    with runner.engine.connect() as conn:
        result = conn.exec_driver_sql(render(query), params) if params is not None \
            else conn.exec_driver_sql(render(query).replace("%", "%%"))
        return [{k: jsonable(v) for k, v in row._mapping.items()} for row in result]


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection (for statements that must run outside GX)."""
    from runbook.pg import connect as pg_connect

    return pg_connect(libpq_url(url), **kwargs)


def _gx_exception(res: Any) -> str | None:
    """First line of the error GX caught while computing a metric (it returns, not raises).
    `exception_info` is flat or keyed by metric id, depending on where it failed."""
    info = res.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for item in candidates:
        if item.get("raised_exception"):
            text = (item.get("exception_message") or "error").strip()
            for line in text.splitlines():   # prefer the driver's own line
                if "psycopg.errors." in line:
                    return line.split(":", 1)[-1].strip()
            return text.splitlines()[0] if text else "error"
    return None


def _db_error(exc: Exception, gate: str, tables: Sequence[str]) -> RunbookError:
    orig = getattr(exc, "orig", None)
    if isinstance(orig, psycopg.errors.UndefinedTable):
        return RunbookError(f"gate {gate!r}: {one_line(exc)}")
    return RunbookError(f"gate {gate!r}: query failed: {one_line(exc)}")


def _trim(d: dict) -> dict:
    """The GX result without the row payload or rendering noise."""
    out: dict[str, Any] = {"success": d.get("success")}
    cfg = d.get("expectation_config") or {}
    out["expectation_type"] = cfg.get("type")
    kwargs = {k: v for k, v in (cfg.get("kwargs") or {}).items() if k != "batch_id"}
    for k, v in list(kwargs.items()):
        if isinstance(v, str) and len(v) > _MAX_DETAIL_CHARS:
            kwargs[k] = v[:_MAX_DETAIL_CHARS] + "…"
    out["kwargs"] = kwargs
    result = dict(d.get("result") or {})
    det = result.pop("details", None)
    if isinstance(det, dict) and "unexpected_rows" in det:
        result["unexpected_rows_returned"] = len(det["unexpected_rows"] or [])
    for key in ("unexpected_list", "unexpected_index_list", "unexpected_index_query"):
        result.pop(key, None)
    out["result"] = jsonable(result)
    return out
