"""The expand phase of column renames, generated from what the live catalog says.

The renames are data (`TargetDescription.column_renames`: table, old column, new column). For
each, the catalog decides what to do:

* old column present, new absent: add the new column typed exactly as the old one (type,
  modifiers, collation, default), keep both in sync with a trigger, backfill, then mirror what
  guards the old column onto the new one: NOT NULL (CHECK NOT VALID + VALIDATE + SET NOT NULL),
  its CHECK and FOREIGN KEY constraints (NOT VALID + VALIDATE), its indexes and unique keys
  (CREATE INDEX CONCURRENTLY, unique keys as unique indexes, so an upsert on the new names finds
  its conflict target; an index whose predicate leaves out NULLs is built before the backfill,
  while it is empty, so the paced batches fill it rather than one unpaced build afterwards);
* both present: nothing is added; the pair is kept in sync and its parity is proven;
* new present, old absent: already done, nothing to do;
* neither present (or no such table): refused, naming it.

Database code that uses an old column (functions whose body names it; views that depend on it)
is rewritten from its own definition (pg_get_functiondef / pg_get_viewdef): same signature,
body otherwise unchanged, CREATE OR REPLACE so grants and owner stay.

Every object created or changed is listed with the SQL that undoes it (for a change, the prior
definition): the runner records each in the ledger in the transaction that made it, and the
revert undoes exactly the recorded objects. The plan is fixed in the ledger when a fresh apply
starts, so a resumed apply runs the plan it began with.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import connect
from runbook.target import ColumnRename
from runbook.tasks.database import ledger, queries
from runbook.tasks.database.generated import Change, Plan, q, section
from runbook.tasks.database.migration_files import Section
from runbook.tasks.database.sql_rewrite import identifiers, rename_identifiers, rewrite_view

# what squawk must be told about statements that are right here (each reason beside it)
_TYPED_AS_OLD = ("-- reason: the new column is typed exactly as the old one\n"
                 "-- squawk-ignore prefer-text-field,prefer-bigint-over-int,prefer-bigint-over-smallint,"
                 "prefer-timestamptz,prefer-identity,ban-char-field\n")
_NOT_NULL = ("-- reason: a validated CHECK (col IS NOT NULL) exists, so SET NOT NULL does not scan\n"
             "-- squawk-ignore adding-not-nullable-field\n")


# -- catalog reads -----------------------------------------------------------------------------

def _columns(conn: psycopg.Connection, table: str) -> dict[str, dict]:
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attgenerated <> '', a.attidentity <> '',
                  CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             LEFT JOIN pg_collation co ON co.oid = a.attcollation
            WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped""",
        (table,)).fetchall()
    return {r[0]: {"type": r[1], "not_null": r[2], "default": r[3], "generated": r[4],
                   "identity": r[5], "collation": r[6]} for r in rows}


def _relkind(conn: psycopg.Connection, table: str) -> str | None:
    row = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (table,)).fetchone()
    return row[0] if row else None


def _constraints(conn: psycopg.Connection, table: str) -> list[dict]:
    rows = conn.execute(
        """SELECT k.conname, k.contype, pg_get_constraintdef(k.oid), k.conindid::regclass::text,
                  ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey))
             FROM pg_constraint k WHERE k.conrelid = to_regclass(%s) ORDER BY k.conname""",
        (table,)).fetchall()
    return [{"name": r[0], "type": r[1], "definition": r[2], "index": r[3], "columns": r[4]} for r in rows]


def _indexes(conn: psycopg.Connection, table: str) -> list[dict]:
    rows = conn.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid,
                  EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = to_regclass(%s) ORDER BY c.relname""", (table,)).fetchall()
    return [{"name": r[0], "definition": r[1], "valid": r[2], "constraint": r[3]} for r in rows]


def _relation_names(conn: psycopg.Connection) -> set[str]:
    """Names taken in the table's schema (indexes, constraints' indexes, tables...)."""
    return {r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace").fetchall()}


def _functions(conn: psycopg.Connection) -> list[dict]:
    rows = conn.execute(
        """SELECT p.oid, p.oid::regprocedure::text, p.prosrc, p.prokind,
                  p.prosqlbody IS NOT NULL, l.lanname
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             JOIN pg_language l ON l.oid = p.prolang
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'runbook')
              AND n.nspname NOT LIKE 'pg_toast%%' AND l.lanname IN ('plpgsql', 'sql')""").fetchall()
    return [{"oid": r[0], "signature": r[1], "source": r[2], "kind": r[3], "sql_body": r[4],
             "language": r[5]} for r in rows]


def _trigger_functions(conn: psycopg.Connection, table: str) -> set[int]:
    return {r[0] for r in conn.execute(
        "SELECT tgfoid FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal",
        (table,)).fetchall()}


def _dependent_views(conn: psycopg.Connection, table: str, columns: list[str]) -> list[dict]:
    rows = conn.execute(
        """SELECT DISTINCT v.oid, v.oid::regclass::text, v.relkind, pg_get_viewdef(v.oid, true),
                  array_to_string(v.reloptions, ', ')
             FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
             JOIN pg_class v ON v.oid = r.ev_class
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass(%s)
              AND v.oid <> d.refobjid AND a.attname = ANY(%s)""", (table, columns)).fetchall()
    return [{"oid": r[0], "name": r[1], "kind": r[2], "definition": r[3], "options": r[4]} for r in rows]


# -- naming ------------------------------------------------------------------------------------

def derived_name(name: str, mapping: dict[str, str], taken: set[str], suffix: str) -> str:
    """`name` with the old column names in it replaced by the new ones (or `suffix` appended),
    at most 63 bytes, and not one of `taken`."""
    out = name
    for old, new in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        out = out.replace(old, new)
    if out == name and mapping:
        out = f"{name}_{suffix}"
    base, n = out[:63], 2
    out = base
    while out in taken:
        tail = f"_{n}"
        out, n = base[:63 - len(tail)] + tail, n + 1
    taken.add(out)
    return out


# -- the plan ----------------------------------------------------------------------------------

def build_plan(url: str, migration_number: int, renames: tuple[ColumnRename, ...]) -> Plan:
    """Read the catalog and generate the expand migration for this database."""
    plan = Plan()
    by_table: dict[str, list[ColumnRename]] = {}
    for r in renames:
        by_table.setdefault(r.table, []).append(r)
    add_cols, sync, backfills, checks, validate, not_null, indexes, code = ([] for _ in range(8))
    add_changes, sync_changes, check_changes, index_changes, code_changes = ([] for _ in range(5))
    early_indexes, early_changes = [], []
    with connect(url) as conn:
        taken = _relation_names(conn)
        constraint_names = {r[0] for r in conn.execute("SELECT conname FROM pg_constraint").fetchall()}
        functions = _functions(conn)
        sync_fn_exists = conn.execute(
            "SELECT to_regprocedure('runbook.sync_renamed_columns()') IS NOT NULL").fetchone()[0]
        for table, pairs in by_table.items():
            kind = _relkind(conn, table)
            if kind is None:
                raise RunbookError(f"table {table!r} does not exist; cannot rename its columns "
                                   + ", ".join(f"{p.old} -> {p.new}" for p in pairs))
            if kind not in ("r", "p"):
                raise RunbookError(f"{table!r} is not a table (relkind {kind!r}); cannot rename its columns")
            cols = _columns(conn, table)
            added, synced = {}, {}
            for p in pairs:
                old, new = cols.get(p.old), cols.get(p.new)
                if old is None and new is None:
                    raise RunbookError(f"{table}: neither {p.old} nor {p.new} exists; the rename "
                                       f"{p.old} -> {p.new} does not fit this database")
                if old is None:
                    plan.notes.append(f"{table}.{p.new} exists and {table}.{p.old} does not: "
                                      "already renamed, nothing to do")
                    continue
                if old["generated"] or old["identity"]:
                    raise RunbookError(f"{table}.{p.old} is a generated or identity column; "
                                       "renaming it by expand/contract is not supported")
                if new is not None:
                    if new["type"] != old["type"]:
                        raise RunbookError(f"{table}.{p.new} already exists as {new['type']}, but "
                                           f"{table}.{p.old} is {old['type']}; refusing to pair them")
                    plan.notes.append(f"{table}.{p.new} already exists beside {p.old}: not re-added; "
                                      "kept in sync and checked for parity")
                    synced[p.old] = p.new
                    continue
                added[p.old] = p.new
                synced[p.old] = p.new
                col = sql.SQL("ALTER TABLE {} ADD COLUMN {} ").format(
                    sql.Identifier(table), sql.Identifier(p.new)).as_string(conn) + old["type"]
                if old["collation"]:
                    col += " COLLATE " + q(old["collation"])
                add_cols.append(_TYPED_AS_OLD + col + ";")
                if old["default"] is not None:
                    add_cols.append(f"ALTER TABLE {q(table)} ALTER COLUMN {q(p.new)} SET DEFAULT {old['default']};")
                add_changes.append(Change("column", f"{table}.{p.new}", "created",
                                          "-- reason: the column this migration added\n"
                                          "-- squawk-ignore ban-drop-column\n"
                                          f"ALTER TABLE {q(table)} DROP COLUMN IF EXISTS {q(p.new)};"))
                plan.checks.append({"description": f"{table}.{p.new} exists, typed {old['type']}"
                                    + (" NOT NULL" if old["not_null"] else "") + f" like {p.old}",
                                    "sql": _column_check(table, p.new, old["type"], old["not_null"])})
                if old["not_null"]:
                    cname = derived_name(f"{table}_{p.new}_not_null", {}, constraint_names, "x")
                    checks.append(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(cname)} "
                                  f"CHECK ({q(p.new)} IS NOT NULL) NOT VALID;")
                    validate.append(f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {q(cname)};")
                    not_null.append(_NOT_NULL + f"ALTER TABLE {q(table)} ALTER COLUMN {q(p.new)} SET NOT NULL;")
                    check_changes.append(_constraint_change(table, cname))
            if not synced:
                continue
            plan.pairs[table] = [[old, new] for old, new in synced.items()]
            # the guards of the old columns, mirrored onto the new ones
            for k in _constraints(conn, table):
                if not added or not set(k["columns"]) & set(added):
                    continue
                if k["type"] in ("c", "f"):
                    cname = derived_name(k["name"], added, constraint_names, "new")
                    checks.append(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(cname)} "
                                  f"{rename_identifiers(k['definition'], added)} NOT VALID;")
                    validate.append(f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {q(cname)};")
                    check_changes.append(_constraint_change(table, cname))
                    plan.checks.append({"description": f"{table}: constraint {cname} (mirrors {k['name']}) "
                                        "is validated", "sql": _validated_check(table, cname)})
                elif k["type"] in ("p", "u"):
                    plan.notes.append(f"{table}: key {k['name']} covers {', '.join(set(k['columns']) & set(added))}: "
                                      "mirrored as a unique index on the new columns")
            for ix in _indexes(conn, table):
                if not added or not identifiers(ix["definition"].split(" ON ", 1)[1]) & set(added):
                    continue
                if kind == "p":
                    raise RunbookError(f"{table} is partitioned and its index {ix['name']} covers "
                                       f"{', '.join(set(added))}: mirroring it needs an index per partition "
                                       "built CONCURRENTLY and attached, which this runner does not do yet; "
                                       "nothing was changed")
                name = derived_name(ix["name"], added, taken, "new")
                definition = rename_identifiers(ix["definition"].split(" ON ", 1)[1], added)
                unique = "UNIQUE " if ix["definition"].startswith("CREATE UNIQUE") else ""
                # an index that leaves out the rows whose new column is still NULL is (almost)
                # empty before the backfill: built then, the backfill's paced batches fill it,
                # instead of one unpaced build writing the whole index and its WAL at once
                early = _leaves_out_null(definition, set(added.values()))
                if early:
                    plan.notes.append(f"{table}: index {name} leaves out rows whose "
                                      f"{'/'.join(sorted(set(added.values()) & identifiers(definition)))} is NULL: "
                                      "built before the backfill, which fills it at its pace")
                (early_indexes if early else indexes).append(
                    f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {q(name)} ON {definition};")
                (early_changes if early else index_changes).append(
                    Change("index", name, "created", f"DROP INDEX CONCURRENTLY IF EXISTS {q(name)};",
                           concurrent=True))
                plan.checks.append({"description": f"index {name} (mirrors {ix['name']}) is valid",
                                    "sql": f"SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                           f"to_regclass({sql.Literal(name).as_string(conn)})), false)"})
            trigger = f"{table}_sync_{migration_number:03d}"
            args = ", ".join(sql.Literal(c).as_string(conn) for pair in synced.items() for c in pair)
            sync.append(f"CREATE TRIGGER {q(trigger)} BEFORE INSERT OR UPDATE ON {q(table)} FOR EACH ROW\n"
                        "    WHEN (current_setting('runbook.backfill', true) IS DISTINCT FROM 'on')\n"
                        f"    EXECUTE FUNCTION runbook.sync_renamed_columns({args});")
            sync_changes.append(Change("trigger", f"{trigger} ON {table}", "created",
                                       f"DROP TRIGGER IF EXISTS {q(trigger)} ON {q(table)};"))
            plan.checks.append({"description": f"trigger {trigger} keeps {table}'s renamed columns in sync",
                                "sql": f"SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = "
                                       f"{sql.Literal(trigger).as_string(conn)} AND tgrelid = "
                                       f"to_regclass({sql.Literal(table).as_string(conn)}) AND tgenabled <> 'D')"})
            if added:
                backfills.append(Section(f"backfill_{table}", "", backfill_table=table,
                                         backfill_pairs=[(new, old) for old, new in added.items()]))
            # database code using the old columns
            code_sql, code_ch = _carry_code(conn, table, synced, functions)
            code += code_sql
            code_changes += code_ch
            for ch in code_ch:
                if ch.kind == "function":
                    plan.checks.append({"description": f"function {ch.name} no longer uses "
                                        + ", ".join(f"{table}.{o}" for o in synced),
                                        "function": ch.name, "names": list(synced)})
    if sync_changes and not sync_fn_exists:
        sync_changes.insert(0, Change("function", "runbook.sync_renamed_columns()", "created",
                                      "-- reason: the runbook's own function, no trigger uses it any more\n"
                                      "-- squawk-ignore ban-drop-function\n"
                                      "DROP FUNCTION IF EXISTS runbook.sync_renamed_columns();"))
    sync_head = ["CREATE SCHEMA IF NOT EXISTS runbook;", queries.text("sync_renamed_columns")] if sync else []
    plan.sections = [s for s in (
        section("add_columns", add_cols, add_changes),
        section("sync_triggers", sync_head + sync, sync_changes),
        section("indexes_before_backfill", early_indexes, early_changes, transactional=False),
        *backfills,
        section("add_checks", checks, check_changes),
        section("validate_checks", validate, []),
        section("set_not_null", not_null, []),
        section("indexes", indexes, index_changes, transactional=False),
        section("database_code", code, code_changes),
    ) if s is not None]
    return plan


_STRICT_COMPARISONS = {"=", "<>", "!=", "<", "<=", ">", ">="}


def _leaves_out_null(definition: str, new_columns: set[str]) -> bool:
    """Whether the index's predicate is false or NULL wherever one of `new_columns` is NULL: one
    of its AND-ed terms is `col IS NOT NULL` or a comparison of the bare column (the built-in
    comparisons are strict). Only decides when the index is built, never what it holds."""
    import pglast
    from pglast import ast, enums

    where = pglast.parse_sql(f"CREATE INDEX x ON {definition}")[0].stmt.whereClause
    if where is None:
        return False
    terms = (where.args if isinstance(where, ast.BoolExpr) and where.boolop == enums.BoolExprType.AND_EXPR
             else (where,))

    def new_column(node) -> bool:
        return isinstance(node, ast.ColumnRef) and getattr(node.fields[-1], "sval", None) in new_columns

    for t in terms:
        if isinstance(t, ast.NullTest) and t.nulltesttype == enums.NullTestType.IS_NOT_NULL and new_column(t.arg):
            return True
        if (isinstance(t, ast.A_Expr) and t.kind == enums.A_Expr_Kind.AEXPR_OP and len(t.name) == 1
                and t.name[0].sval in _STRICT_COMPARISONS and (new_column(t.lexpr) or new_column(t.rexpr))):
            return True
    return False


def _constraint_change(table: str, name: str) -> Change:
    return Change("constraint", f"{name} ON {table}", "created",
                  "-- reason: the constraint this migration added\n"
                  "-- squawk-ignore ban-drop-constraint\n"
                  f"ALTER TABLE {q(table)} DROP CONSTRAINT IF EXISTS {q(name)};")


def _column_check(table: str, column: str, type_: str, not_null: bool) -> str:
    lit = lambda v: sql.Literal(v).as_string(None)
    return (f"SELECT coalesce((SELECT format_type(atttypid, atttypmod) = {lit(type_)}"
            + (" AND attnotnull" if not_null else "")
            + f" FROM pg_attribute WHERE attrelid = to_regclass({lit(table)}) AND attname = {lit(column)}"
            " AND NOT attisdropped), false)")


def _validated_check(table: str, name: str) -> str:
    lit = lambda v: sql.Literal(v).as_string(None)
    return (f"SELECT coalesce((SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass({lit(table)})"
            f" AND conname = {lit(name)}), false)")


def _carry_code(conn: psycopg.Connection, table: str, mapping: dict[str, str],
                functions: list[dict]) -> tuple[list[str], list[Change]]:
    """CREATE OR REPLACE of each function and view that uses `table`'s old columns."""
    statements, changes = [], []
    triggers = _trigger_functions(conn, table)
    for f in functions:
        used = identifiers(f["source"]) if f["source"] else set()
        if not used & set(mapping) or (table not in used and f["oid"] not in triggers):
            continue
        if f["sql_body"] or f["kind"] != "f" and f["kind"] != "p":
            raise RunbookError(f"{f['signature']} uses {table}.{'/'.join(sorted(used & set(mapping)))} "
                               "but is not a plain function with a source body; carry it by hand")
        prior = conn.execute("SELECT pg_get_functiondef(%s)", (f["oid"],)).fetchone()[0]
        body = rename_identifiers(f["source"], mapping)
        if prior.count(f["source"]) != 1:
            raise RunbookError(f"{f['signature']}: cannot locate its body in pg_get_functiondef")
        statements.append(prior.replace(f["source"], body).rstrip() + ";")
        changes.append(Change("function", f["signature"], "replaced", prior.rstrip() + ";", prior=prior))
    for v in _dependent_views(conn, table, list(mapping)):
        if v["kind"] != "v":
            raise RunbookError(f"{v['name']} (relkind {v['kind']!r}) depends on {table}."
                               f"{'/'.join(mapping)}; a materialized view cannot be carried in place")
        head = f"CREATE OR REPLACE VIEW {v['name']}" + (f" WITH ({v['options']})" if v["options"] else "")
        prior = f"{head} AS\n{v['definition'].rstrip().rstrip(';')};"
        statements.append(f"{head} AS\n{rewrite_view(v['definition'], table, mapping)};")
        changes.append(Change("view", v["name"], "replaced", prior, prior=prior))
    return statements, changes




def synced_pairs(url: str, migration_id: str) -> dict[str, list[tuple[str, str]]]:
    """The (old, new) pairs the applied plan keeps in sync, per table, whose two columns both
    still exist (after a contract, the contracted pairs are gone)."""
    state = ledger.migration_state(url, migration_id)
    if not state or not state.get("plan"):
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    with connect(url) as conn:
        for table, pairs in Plan.from_json(state["plan"]).pairs.items():
            cols = _columns(conn, table)
            kept = [(o, n) for o, n in pairs if o in cols and n in cols]
            if kept:
                out[table] = kept
    return out
