"""Every gate fails closed: a tool that is missing, crashes or prints nothing, a permission that
hides rows, an empty set of tables, a probe hook never reached — each is a failed gate naming
the cause (real PostgreSQL, real squawk, real processes). Also the failing cases of gates no
other test makes fail."""
from __future__ import annotations

import shutil
import stat
import uuid
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import sql

from runbook.demo.workspace import TEMPLATE
from runbook.expectations.contract import old_column_references_gate
from runbook.expectations.evaluator import escape_gate, no_eval_gate
from runbook.expectations.integrity import explain_gate, fk_index_gate
from runbook.expectations.lint import lint_migration
from runbook.expectations.preflight import (
    backfill_triggers_gate,
    disk_room,
    drift,
    long_transactions,
)
from runbook.expectations.quarantine import accounted_gate, emptied_gate, reasons_gate
from runbook.expectations.schema import compare_rebuild, duplicates_gate
from runbook.expectations.week0.day1_2 import (
    old_names_gate,
    pairs_gate,
    parity_gates,
    plan_validation_gate,
    side_effects_gate,
)
from runbook.pg import connect
from runbook.plan import MIGRATION_014, MIGRATION_017
from runbook.target import DAWSOS
from runbook.tasks.database import ledger
from runbook.tasks.database.fk_indexes import Probe
from runbook.tasks.database.migration_files import Migration

ORCH = "backend/app/core/pattern_orchestrator.py"
EVAL_LINE = 'result = eval(safe_condition, {"__builtins__": {}}, state)'


def execute(url: str, *statements: str) -> None:
    with connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


def triad(tmp_path: Path, up: str) -> Migration:
    files = {"up": f"-- runbook:section main\n{up}\n",
             "down": "-- runbook:section main\nSELECT 1;\n",
             "verify": "-- runbook:check it holds\nSELECT true;\n"}
    paths = {}
    for kind, text in files.items():
        paths[kind] = tmp_path / f"900_probe.{kind}.sql"
        paths[kind].write_text(text)
    return Migration("900_probe", paths["up"], paths["down"], paths["verify"])


def fake_tool(tmp_path: Path, body: str) -> str:
    path = tmp_path / "squawk-stand-in"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# -- squawk ------------------------------------------------------------------------------------

@pytest.mark.gate_fails("squawk")
def test_squawk_findings_fail_the_gate(tmp_path):
    result = lint_migration(triad(tmp_path, "ALTER TABLE t ADD COLUMN c int NOT NULL;"))
    assert not result.passed and result.observed >= 1
    assert any(f["rule"] == "adding-required-field" for f in result.sample)
    assert lint_migration(triad(tmp_path, "SELECT 1;")).passed          # the real tool, clean input


@pytest.mark.gate_fails("squawk")
@pytest.mark.parametrize("tool,cause", [
    (None, "squawk not found"),
    ("echo 'thread main panicked' >&2; exit 101", "squawk printed nothing (exit code 101): thread main panicked"),
    ("exit 0", "squawk printed nothing (exit code 0)"),
    ("echo '[]'; exit 101", "squawk exited 101 with 0 findings"),
    ("echo 'not json'; exit 1", "squawk's output is not JSON"),
])
def test_squawk_missing_crashing_or_silent_is_a_failed_gate_not_zero_findings(tmp_path, tool, cause):
    binary = str(tmp_path / "no-such-squawk") if tool is None else fake_tool(tmp_path, tool)
    result = lint_migration(triad(tmp_path, "SELECT 1;"), squawk=binary)
    assert not result.passed
    assert str(result.observed).startswith(cause)
    assert result.sample == [{"rule": "squawk-error", "message": result.observed}]


# -- preflight ---------------------------------------------------------------------------------

@pytest.mark.gate_fails("preflight:long-transactions")
def test_long_transaction_of_another_session_fails_the_preflight(fresh_db):
    assert long_transactions(fresh_db, older_than_s=0).passed
    with psycopg.connect(fresh_db) as other:
        other.execute("SELECT 1")            # a transaction is now open in another session
        result = long_transactions(fresh_db, older_than_s=0)
        other.rollback()
    assert not result.passed and result.observed == 1


@pytest.mark.gate_fails("preflight:long-transactions")
def test_a_role_that_cannot_see_other_sessions_fails_the_preflight_instead_of_passing_blind(fresh_db):
    """Without pg_read_all_stats, another role's open transaction shows xact_start NULL: the
    gate would see nothing; it fails naming the role instead, and passes once granted."""
    role = f"rb_blind_{uuid.uuid4().hex[:8]}"
    ident = sql.Identifier(role)
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
    role_url = f"postgresql://{role}@{fresh_db.split('@', 1)[1]}"
    try:
        with psycopg.connect(fresh_db) as other:
            other.execute("SELECT 1")        # the superuser's transaction stays open
            blind = long_transactions(role_url, older_than_s=0)
            with connect(fresh_db, autocommit=True) as conn:
                conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(ident))
            seeing = long_transactions(role_url, older_than_s=0)
            other.rollback()
        assert not blind.passed
        assert blind.observed == (f"role {role} cannot see other sessions' xact_start "
                                  "(not superuser, no pg_read_all_stats)")
        assert not seeing.passed and seeing.observed == 1      # now it sees the transaction
    finally:
        with connect(fresh_db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(ident))


@pytest.mark.gate_fails("preflight:drift")
def test_drift_fails_when_the_ledger_checksum_differs_from_the_file(fresh_db, tmp_path):
    m = triad(tmp_path, "SELECT 1;")
    ledger.ensure(fresh_db)
    ledger.set_migration(fresh_db, m.id, m.checksum, "applied")
    assert drift(fresh_db, m).passed
    m.up.write_text(m.up.read_text() + "-- edited after it was applied\n")
    result = drift(fresh_db, m)
    assert not result.passed and result.expected == m.checksum[:12] and result.observed != result.expected


@pytest.mark.gate_fails("preflight:backfill-triggers")
def test_backfill_triggers_gate_fails_for_a_role_that_cannot_keep_a_trigger_out(fresh_db, tmp_path):
    """A trigger the backfill would fire, and a role that can neither set replica nor alter the
    table: refused naming the trigger, unless the operator accepts it by name."""
    execute(fresh_db, "CREATE TABLE lots (id int PRIMARY KEY, qty_open numeric, quantity_open numeric, "
                      "updated_at timestamptz)", "INSERT INTO lots VALUES (1, 5, NULL, NULL)",
            "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
            "CREATE TRIGGER trg_stamp BEFORE UPDATE ON lots FOR EACH ROW EXECUTE FUNCTION stamp()")
    m = triad(tmp_path, "SELECT 1;\n-- runbook:backfill lots quantity_open=qty_open")
    role = f"rb_trg_{uuid.uuid4().hex[:8]}"
    with connect(fresh_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT, UPDATE ON lots TO {}").format(sql.Identifier(role)))
    role_url = f"postgresql://{role}@{fresh_db.split('@', 1)[1]}"
    try:
        refused = backfill_triggers_gate(SimpleNamespace(database_url=role_url, accept_trigger_effects=()), m)
        accepted = backfill_triggers_gate(SimpleNamespace(database_url=role_url,
                                                          accept_trigger_effects=("trg_stamp",)), m)
    finally:
        with connect(fresh_db, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert not refused.passed and "trg_stamp" in refused.observed
    assert refused.sample[0]["kept_out"] == "refused"
    assert accepted.passed


@pytest.mark.gate_fails("preflight:disk")
def test_disk_gate_fails_when_the_backup_dir_cannot_be_used(fresh_db, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = disk_room(SimpleNamespace(database_url=fresh_db, backup_dir=blocker / "backups"))
    assert not result.passed and "a-file" in result.observed


# -- quarantine (015) --------------------------------------------------------------------------

@pytest.fixture
def quarantined(fresh_db):
    execute(fresh_db, "CREATE TABLE lots (id int PRIMARY KEY)", "INSERT INTO lots VALUES (1), (2)",
            "CREATE SCHEMA quarantine",
            "CREATE TABLE quarantine.lots (row_key jsonb PRIMARY KEY, row_data jsonb NOT NULL, "
            "reason text NOT NULL, migration_id text NOT NULL, flow_run_id text)",
            """INSERT INTO quarantine.lots VALUES ('{"id": 3}', '{"id": 3}', 'orphan: portfolio_id', '015', 'r')""")
    return fresh_db


@pytest.mark.gate_fails("quarantine:accounted")
def test_accounted_fails_on_a_lost_row_and_on_an_empty_set_of_tables(quarantined):
    assert accounted_gate(quarantined, ["lots"], "015", {"lots": 3}).passed      # 2 + 1 quarantined
    lost = accounted_gate(quarantined, ["lots"], "015", {"lots": 4})
    assert not lost.passed and lost.sample[0]["accounted"] is False
    empty = accounted_gate(quarantined, [], "015", {"lots": 3})
    assert not empty.passed and empty.observed == "no quarantine table for 015: nothing to check"


@pytest.mark.gate_fails("quarantine:reasons")
def test_every_quarantined_row_says_why_or_the_gate_fails(quarantined):
    assert reasons_gate(quarantined, ["lots"], "015").passed
    execute(quarantined, """INSERT INTO quarantine.lots VALUES ('{"id": 4}', '{"id": 4}', '  ', '015', 'r')""")
    silent = reasons_gate(quarantined, ["lots"], "015")
    assert not silent.passed and silent.sample == [{"table": "quarantine.lots", "rows_without_reason": 1}]
    empty = reasons_gate(quarantined, [], "015")
    assert not empty.passed and "nothing to check" in empty.observed


@pytest.mark.gate_fails("restored:quarantine")
def test_restored_fails_while_a_quarantined_row_is_left(quarantined):
    result = emptied_gate(quarantined, ["lots"], "015")
    assert not result.passed and result.sample == [{"table": "lots", "still_quarantined": 1}]
    execute(quarantined, "DELETE FROM quarantine.lots")
    assert emptied_gate(quarantined, ["lots"], "015").passed


# -- day 1-2 -----------------------------------------------------------------------------------

@pytest.mark.gate_fails("plan-validation:014")
def test_plan_validation_fails_when_a_new_column_is_nullable_or_a_lot_differs(fresh_db):
    execute(fresh_db, "CREATE TABLE lots (id int PRIMARY KEY, qty_open numeric, qty_original numeric, "
                      "quantity_open numeric NOT NULL, quantity_original numeric)",
            "INSERT INTO lots VALUES (1, 5, 5, 5, 5), (2, 3, 4, 2, 4)")
    result = plan_validation_gate(fresh_db)
    assert not result.passed
    assert result.observed["columns"]["quantity_original"] == "YES"
    assert result.observed["data"]["total_lots"] == 2 and result.observed["data"]["matching_open"] == 1


@pytest.mark.gate_fails("parity-pairs")
def test_parity_over_no_column_pair_fails_until_the_contract(fresh_db):
    """014 recorded as applied without a plan (or its columns gone): nothing to compare fails;
    once 017 (the contract) is applied, no pair is what is expected."""
    ledger.ensure(fresh_db)
    ledger.set_migration(fresh_db, MIGRATION_014, "x", "applied")
    gates = {g.name: g for g in parity_gates(fresh_db, {})}
    assert not gates[f"parity-pairs:{MIGRATION_014}"].passed
    assert gates[f"parity-pairs:{MIGRATION_014}"].observed == "0 pairs in 0 tables"
    ledger.set_migration(fresh_db, MIGRATION_017, "y", "applied")
    assert pairs_gate(fresh_db, {}).passed


@pytest.mark.gate_fails("backfill-side-effects")
def test_side_effects_gate_fails_when_the_backfill_changed_other_columns(fresh_db):
    ledger.ensure(fresh_db)
    with connect(fresh_db) as conn:
        # the relation's layout, then one of its two segments finds changed rows
        ledger.save_checkpoint(conn, "014", "lots", {"segments": [[0, 5], [5, 10]], "triggers": "fire"}, 10, True)
        ledger.save_checkpoint(conn, "014", "lots#0", {"block": 5, "side_effects": 0, "sample": []}, 6, True)
        ledger.save_checkpoint(conn, "014", "lots#1", {"block": 10, "side_effects": 2, "sample": [{"id": 1}]},
                               4, True)
    result = side_effects_gate(fresh_db, "014")
    assert not result.passed and result.observed == 2 and result.sample == [{"table": "lots", "row": {"id": 1}}]


# -- day 3-4 / contract --------------------------------------------------------------------------

@pytest.mark.gate_fails("explain:indexes-used")
def test_explain_fails_without_a_usable_index_and_without_any_probe(fresh_db):
    execute(fresh_db, "CREATE TABLE lots (id int PRIMARY KEY, portfolio_id int)", "INSERT INTO lots VALUES (1, 7)")
    probe = Probe(description="lots by portfolio", table="lots", query="SELECT * FROM lots WHERE portfolio_id = {portfolio_id}",
                  leading=("portfolio_id",))
    unindexed = explain_gate(fresh_db, [probe])
    assert not unindexed.passed and "no index leading with portfolio_id" in unindexed.sample[0]["problem"]
    execute(fresh_db, "CREATE INDEX ON lots (portfolio_id)")
    assert explain_gate(fresh_db, [probe]).passed
    none = explain_gate(fresh_db, [])
    assert not none.passed and none.sample[0]["problem"] == "no query or FK lookup to explain: nothing to check"


@pytest.mark.gate_fails("fk-index")
def test_fk_index_fails_on_a_schema_without_foreign_keys(fresh_db):
    execute(fresh_db, "CREATE TABLE lots (id int PRIMARY KEY, portfolio_id int)")
    result = fk_index_gate(fresh_db)
    assert not result.passed and result.observed == "no foreign key in schema public: nothing to check"


@pytest.mark.gate_fails("schema:defined-once")
def test_defined_once_fails_on_a_table_created_twice(tmp_path):
    schema = tmp_path / DAWSOS.schema_dir
    schema.mkdir(parents=True)
    (tmp_path / DAWSOS.migrations_dir).mkdir(parents=True, exist_ok=True)
    (schema / "a.sql").write_text("CREATE TABLE audit_log (id int);\n")
    (tmp_path / DAWSOS.migrations_dir / "010_audit.sql").write_text("CREATE TABLE IF NOT EXISTS audit_log (id int);\n")
    result = duplicates_gate(tmp_path)
    assert not result.passed and result.sample[0]["table"] == "public.audit_log"


@pytest.mark.gate_fails("schema:rebuild-matches-live")
def test_rebuild_that_builds_no_table_fails_even_against_an_empty_database(fresh_db, admin_url, tmp_path):
    """Deployed SQL that creates nothing, compared with a database that has nothing: 0
    differences, yet nothing was compared."""
    (tmp_path / DAWSOS.schema_dir).mkdir(parents=True)
    (tmp_path / DAWSOS.schema_dir / "empty.sql").write_text("SELECT 1;\n")
    result = compare_rebuild(fresh_db, admin_url, f"rb_scratch_{uuid.uuid4().hex[:8]}", tmp_path)
    assert not result.passed
    assert result.sample == [{"kind": "rebuild", "name": "(all)", "live": "-", "rebuilt": "no table rebuilt"}]


@pytest.mark.gate_fails("catalog:old-column-references")
def test_old_column_references_fail_while_a_view_uses_an_old_column(fresh_db):
    execute(fresh_db, "CREATE TABLE lots (id int, qty_open numeric, quantity_open numeric)",
            "CREATE VIEW open_lots AS SELECT id, qty_open FROM lots")
    result = old_column_references_gate(fresh_db, ignore=frozenset())
    assert not result.passed and result.sample == [{"kind": "view", "object": "open_lots", "column": "qty_open"}]


# -- day 5: no eval, and the escape probe's canary ---------------------------------------------

@pytest.mark.gate_fails("code:no-eval")
def test_no_eval_fails_when_there_is_nothing_to_scan(tmp_path):
    (tmp_path / "backend").mkdir()
    result = no_eval_gate(tmp_path)
    assert not result.passed and result.sample[0]["call"] == "nothing scanned"


@pytest.mark.gate_fails("code:old-names")
def test_old_names_fails_on_a_checkout_with_no_code(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = old_names_gate(SimpleNamespace(deploy_dir=tmp_path))
    assert not result.passed and "no tracked files" in result.observed


def orchestrator_variant(dest: Path, new_line: str, imports: str = "") -> Path:
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    path = dest / ORCH
    text = path.read_text()
    assert EVAL_LINE in text
    text = text.replace("\nimport re\n", "\nimport re\n" + imports, 1)   # after `from __future__`
    path.write_text(text.replace(EVAL_LINE, new_line))
    return dest


@pytest.mark.gate_fails("security:escape-corpus")
def test_escape_gate_fails_when_the_probe_never_reaches_the_backends_evaluator(tmp_path):
    """A backend that evaluates through something no hook sees (here a compiled function): the
    old probe marked every payload "rejected"; the canary proves nothing reached the hook."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("# [import]\n__import__('os')\n")
    code = orchestrator_variant(tmp_path / "hidden", 'result = types.FunctionType(compile(safe_condition, "c", "eval"), '
                                '{"__builtins__": {}, **state})()', "import types\n")
    result = escape_gate(code, corpus)
    assert not result.passed
    assert str(result.observed).startswith("probe never reached the evaluator")


def test_escape_probe_hooks_simple_eval_and_a_simpleeval_instance(tmp_path):
    """What the old hook (evaluate_condition / eval by name) never saw is seen now: the canary
    reaches it, and the corpus is judged by what the evaluator did."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("# [import]\n__import__('os')\n# [dunder]\n().__class__.__base__.__subclasses__()\n")
    for name, line, imports in (
            ("function", "result = simple_eval(safe_condition, names=state)", "from simpleeval import simple_eval\n"),
            ("instance", "_EVALUATOR.names = state; result = _EVALUATOR.eval(safe_condition)",
             "from simpleeval import SimpleEval\n_EVALUATOR = SimpleEval()\n")):
        result = escape_gate(orchestrator_variant(tmp_path / name, line, imports), corpus)
        assert result.passed, (name, result.observed, result.sample)
        assert result.details["evaluator"], name


# -- pool health: what the live pool uses, not what the code's constants say -------------------

@pytest.mark.gate_fails("pool-health")
def test_pool_health_reads_the_timeouts_from_the_live_pool(target, tmp_path):
    """Two APIs after the pool codemod: one as written (passes); one whose pool is built with
    another command timeout while its constant still says 60 (fails on the live value)."""
    from runbook.expectations.week0.day3_4 import pool_health_verdict
    from runbook.tasks.code.pool import configure_pool
    from runbook.tasks.target.api_server import ApiServer

    verdicts, healths = {}, {}
    for name in ("as-written", "live-differs"):
        code = tmp_path / name
        shutil.copytree(TEMPLATE, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        configure_pool(code)
        db_py = code / "backend/app/core/database.py"
        if name == "live-differs":
            text = db_py.read_text()
            assert "command_timeout=POOL_COMMAND_TIMEOUT" in text
            db_py.write_text(text.replace("command_timeout=POOL_COMMAND_TIMEOUT", "command_timeout=5"))
        server = ApiServer(code, target.staging_url, log_path=tmp_path / f"{name}.log")
        try:
            server.start()
            healths[name] = server.health()
        finally:
            server.stop()
        verdicts[name] = pool_health_verdict(healths[name])
    assert verdicts["as-written"].passed, verdicts["as-written"].sample
    bad = verdicts["live-differs"]
    assert not bad.passed
    assert bad.sample == [{"setting": "pool_command_timeout", "reported": 5.0, "expected": 60}]
    assert healths["live-differs"]["pool"]["command_timeout"] == 60      # the constant still says 60
