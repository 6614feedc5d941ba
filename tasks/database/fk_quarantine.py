"""Migration 015 generated from the catalog: orphans to quarantine with every row that refers to
them, then the foreign keys (Week 0, Task 2.1).

The spec is the links the plan constrains (`TargetDescription.foreign_keys`: child.column ->
parent.id). An orphan (a child row whose value has no parent row) cannot stay: it moves to the
`quarantine` schema as a jsonb image of the whole row, with the reason and the run. Rows that
refer to a moving row (any FK into a moving table, whatever its ON DELETE: NO ACTION would make
the move fail, CASCADE would delete them silently, SET NULL would clear their link) move with
it, transitively, found from the catalog. Everything moves in ONE transaction, parents locked
first, children deleted before their parents: either all of it moves or nothing does. A table
in that closure without a primary key is refused before anything changes, naming the FK.

The revert puts the rows back exactly (parents first): every stored column, identity values
kept (OVERRIDING SYSTEM VALUE), generated columns recomputed, columns the row image lacks left
to their defaults, and the table's user INSERT triggers disabled for that transaction, so the
application's triggers do not fire again.
"""
from __future__ import annotations

from psycopg import sql

from runbook.errors import RunbookError
from runbook.pg import connect
from runbook.target import ForeignKey
from runbook.tasks.database.generated import Change, Plan, q, section

SCHEMA = "quarantine"


def _lit(v) -> str:
    return sql.Literal(v).as_string(None)


def _primary_key(conn, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)""", (table,)).fetchall()]


def _referencing(conn, table: str) -> list[dict]:
    """FKs into `table`: child, its columns, the parent's columns (with types), the action."""
    rows = conn.execute(
        """SELECT k.conname, k.conrelid::regclass::text, k.confdeltype,
                  ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, o)
                          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o),
                  ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o),
                  ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(k.confkey) WITH ORDINALITY u(n, o)
                          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.o)
             FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = to_regclass(%s)
            ORDER BY k.conname""", (table,)).fetchall()
    actions = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
    return [{"name": r[0], "child": r[1], "action": actions.get(r[2], r[2]), "columns": r[3],
             "parent_columns": r[4], "types": r[5], "parent": table} for r in rows]


def _has_fk(conn, fk: ForeignKey) -> str | None:
    row = conn.execute(
        """SELECT k.conname FROM pg_constraint k
            WHERE k.contype = 'f' AND k.conrelid = to_regclass(%s) AND k.confrelid = to_regclass(%s)
              AND k.conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass(%s)
                                     AND attname = %s AND NOT attisdropped)]::int2[]""",
        (fk.child, fk.parent, fk.child, fk.column)).fetchone()
    return row[0] if row else None


def build_plan(url: str, migration_number: int, fks: tuple[ForeignKey, ...]) -> Plan:
    plan = Plan()
    with connect(url) as conn:
        wanted = []
        for fk in fks:
            for t in (fk.child, fk.parent):
                if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None:
                    raise RunbookError(f"table {t!r} of the link {fk.child}.{fk.column} -> {fk.parent} does not exist")
            existing = _has_fk(conn, fk)
            if existing:
                plan.notes.append(f"{fk.child}.{fk.column} -> {fk.parent} already has foreign key {existing}")
                continue
            wanted.append(fk)
        # the closure: every table whose rows may have to move, and the FKs that bring them in
        tables, edges, queue = [], [], [fk.child for fk in wanted]
        keys: dict[str, list[tuple[str, str]]] = {}
        brought_by: dict[str, str] = {fk.child: f"the link {fk.child}.{fk.column} -> {fk.parent}" for fk in wanted}
        while queue:
            table = queue.pop(0)
            if table in tables:
                continue
            tables.append(table)
            keys[table] = _primary_key(conn, table)
            if not keys[table]:
                raise RunbookError(f"{table} has no primary key: its rows cannot be quarantined and put back "
                                   f"one by one ({table} is moved by {brought_by[table]}); nothing was changed")
            for e in _referencing(conn, table):
                edges.append(e)
                if e["child"] not in tables:
                    brought_by.setdefault(e["child"], f"foreign key {e['name']} ({e['child']} -> {table}, "
                                                      f"ON DELETE {e['action']})")
                    queue.append(e["child"])
        taken = {r[0] for r in conn.execute("SELECT conname FROM pg_constraint").fetchall()}
        schema_exists = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (SCHEMA,)).fetchone()[0]
        existing_q = {t for t in tables if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{t}",)).fetchone()[0]}
    if not wanted:
        return plan
    order = _children_first(tables, edges)
    plan.facts = {"tables": list(reversed(order)), "links": [list(fk) for fk in wanted],
                  "edges": [{k: e[k] for k in ("name", "child", "parent", "action")} for e in edges]}
    # 1. the quarantine tables
    ddl, created = ([] if schema_exists else [f"CREATE SCHEMA {q(SCHEMA)};"]), []
    if not schema_exists:
        created.append(Change("schema", SCHEMA, "created",
                              f"DO $s$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = "
                              f"to_regnamespace({_lit(SCHEMA)})) THEN DROP SCHEMA {q(SCHEMA)}; END IF; END $s$;"))
    for t in tables:
        if t in existing_q:
            continue
        ddl.append(f"CREATE TABLE {q(SCHEMA, t)} (\n    row_key jsonb PRIMARY KEY,\n    row_data jsonb NOT NULL,\n"
                   "    reason text NOT NULL,\n    migration_id text NOT NULL,\n    flow_run_id text,\n"
                   "    quarantined_at timestamptz NOT NULL DEFAULT now()\n);")
        created.append(Change("table", f"{SCHEMA}.{t}", "created",
                              f"DO $g$ BEGIN IF EXISTS (SELECT 1 FROM {q(SCHEMA, t)}) THEN RAISE EXCEPTION "
                              f"'{SCHEMA}.{t} holds rows this migration did not move; not dropping it'; END IF; END $g$;\n"
                              "-- reason: the quarantine table this migration created, proven empty above\n"
                              "-- squawk-ignore ban-drop-table\n"
                              f"DROP TABLE IF EXISTS {q(SCHEMA, t)};"))
    # 2. the move, in one transaction
    move, moved = _move_sql(wanted, tables, edges, keys, order), []
    for t in order:                       # children first: their undo runs after their parents'
        moved.append(Change("rows", f"{SCHEMA}.{t}", "created", _restore_sql(t)))
    # 3. the foreign keys: NOT VALID (a brief lock), then VALIDATE (no write lock), per table
    add, fk_changes, validates = [], [], []
    for fk in wanted:
        name = fk_name(fk, taken)
        add.append(f"ALTER TABLE {q(fk.child)} ADD CONSTRAINT {q(name)} FOREIGN KEY ({q(fk.column)}) "
                   f"REFERENCES {q(fk.parent)} (id) NOT VALID;")
        fk_changes.append(Change("constraint", f"{name} ON {fk.child}", "created",
                                 "-- reason: the foreign key this migration added\n"
                                 "-- squawk-ignore ban-drop-constraint\n"
                                 f"ALTER TABLE {q(fk.child)} DROP CONSTRAINT IF EXISTS {q(name)};"))
        validates.append(section(f"validate_{fk.child}_fk", [f"ALTER TABLE {q(fk.child)} VALIDATE CONSTRAINT {q(name)};"], []))
        plan.checks.append({"description": f"{fk.child}.{fk.column} has the validated foreign key {name} to {fk.parent}",
                            "sql": f"SELECT coalesce((SELECT convalidated FROM pg_constraint WHERE conname = {_lit(name)}"
                                   f" AND conrelid = to_regclass({_lit(fk.child)})), false)"})
    for t in tables:
        plan.checks.append({"description": f"no row of {SCHEMA}.{t} is also still in {t} (moved, not copied)",
                            "sql": f"SELECT to_regclass({_lit(SCHEMA + '.' + t)}) IS NULL OR NOT EXISTS (SELECT 1 FROM "
                                   f"{q(SCHEMA, t)} qq JOIN {q(t)} rb_row ON " + " AND ".join(
                                       f"rb_row.{q(c)} = (qq.row_key ->> {_lit(c)})::{ty}" for c, ty in keys[t]) + ")"})
    plan.sections = [s for s in (section("quarantine_tables", ddl, created),
                                 section("quarantine_rows", [move], moved),
                                 section("add_foreign_keys", add, fk_changes), *validates) if s is not None]
    return plan


def fk_name(fk: ForeignKey, taken: set[str]) -> str:
    base = f"{fk.child}_{fk.column}_fkey"[:63]
    name, n = base, 2
    while name in taken:
        name, n = f"{base[:59]}_{n}", n + 1
    taken.add(name)
    return name


def _children_first(tables: list[str], edges: list[dict]) -> list[str]:
    """An order in which every referencing table comes before the table it references (self
    references aside: one DELETE checks them at its end)."""
    order, placed = [], set()
    pending = list(tables)
    while pending:
        ready = [t for t in pending
                 if not any(e["parent"] == t and e["child"] != t and e["child"] in pending for e in edges)]
        if not ready:
            raise RunbookError("the foreign keys among " + ", ".join(pending) + " form a cycle; "
                               "the rows cannot be moved in one order; nothing was changed")
        for t in ready:
            order.append(t)
            placed.add(t)
            pending.remove(t)
    return order


def _move_sql(wanted, tables, edges, keys, order) -> str:
    key_json = {t: "jsonb_build_object(" + ", ".join(f"{_lit(c)}, rb_row.{q(c)}" for c, _ in keys[t]) + ")" for t in tables}
    out = [("CREATE TEMP TABLE rb_move (tbl text NOT NULL, depth bigint NOT NULL, row_key jsonb NOT NULL,\n"
            "    row_data jsonb NOT NULL, reason text NOT NULL, PRIMARY KEY (tbl, row_key)) ON COMMIT DROP;")]
    for fk in wanted:      # the orphans, locked
        out.append(
            f"INSERT INTO rb_move SELECT {_lit(fk.child)}, 0, {key_json[fk.child]}, to_jsonb(rb_row),\n"
            f"       {_lit(fk.child + '.' + fk.column + ' ')} || rb_row.{q(fk.column)} || {_lit(' not in ' + fk.parent)}\n"
            f"  FROM (SELECT * FROM {q(fk.child)} c WHERE c.{q(fk.column)} IS NOT NULL AND NOT EXISTS\n"
            f"          (SELECT 1 FROM {q(fk.parent)} p WHERE p.id = c.{q(fk.column)}) FOR UPDATE) AS rb_row\n"
            " ON CONFLICT DO NOTHING;")
    loop = []
    for e in edges:        # rows that refer to a moving row, until none is new
        match = " AND ".join(f"rb_row.{q(c)} = (m.row_data ->> {_lit(pc)})::{ty}"
                             for c, pc, ty in zip(e["columns"], e["parent_columns"], e["types"]))
        loop.append(
            f"        INSERT INTO rb_move SELECT {_lit(e['child'])}, d, {key_json[e['child']]}, to_jsonb(rb_row),\n"
            f"               {_lit('refers to a quarantined ' + e['parent'] + ' row by ' + e['name'] + ' (ON DELETE ' + e['action'] + ')')}\n"
            f"          FROM (SELECT * FROM {q(e['child'])} rb_row WHERE EXISTS (SELECT 1 FROM rb_move m WHERE\n"
            f"                  m.tbl = {_lit(e['parent'])} AND {match}) FOR UPDATE) AS rb_row\n"
            "         ON CONFLICT DO NOTHING;\n"
            "        GET DIAGNOSTICS n = ROW_COUNT; found := found + n;")
    if loop:
        out.append("DO $closure$\nDECLARE d int := 1; n bigint; found bigint;\nBEGIN\n    LOOP\n        found := 0;\n"
                   + "\n".join(loop) + "\n        EXIT WHEN found = 0;\n        d := d + 1;\n    END LOOP;\nEND\n$closure$;")
    # kept, with why and by which run
    for t in tables:
        out.append(f"INSERT INTO {q(SCHEMA, t)} (row_key, row_data, reason, migration_id, flow_run_id)\n"
                   f"SELECT row_key, row_data, reason, current_setting('runbook.migration_id'),\n"
                   "       nullif(current_setting('runbook.flow_run_id', true), '')\n"
                   f"  FROM rb_move WHERE tbl = {_lit(t)};")
    for t in order:        # children before the rows they refer to
        match = " AND ".join(f"rb_row.{q(c)} = (m.row_key ->> {_lit(c)})::{ty}" for c, ty in keys[t])
        out.append(f"DELETE FROM {q(t)} rb_row USING rb_move m WHERE m.tbl = {_lit(t)} AND {match};")
    return "\n".join(out)


def _restore_sql(table: str) -> str:
    """Put `table`'s quarantined rows back exactly, with its user INSERT triggers disabled for
    this transaction only (re-enabled in their former mode before it commits)."""
    reg, qt = _lit(table), q(SCHEMA, table)
    return f"""DO $restore$
DECLARE
    cols text; vals text; trig record; disabled text[] := '{{}}';
BEGIN
    IF to_regclass({_lit(SCHEMA + '.' + table)}) IS NULL THEN
        RETURN;
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
           string_agg('r.' || quote_ident(a.attname), ', ' ORDER BY a.attnum)
      INTO cols, vals
      FROM pg_attribute a
     WHERE a.attrelid = {reg}::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       AND NOT EXISTS (SELECT 1 FROM {qt} qq WHERE qq.migration_id = current_setting('runbook.migration_id')
                        AND NOT qq.row_data ? a.attname);
    FOR trig IN SELECT t.tgname, t.tgenabled FROM pg_trigger t
                 WHERE t.tgrelid = {reg}::regclass AND NOT t.tgisinternal AND t.tgenabled <> 'D'
                   AND (t.tgtype & 4) <> 0
                   AND NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = t.tgfoid AND p.proname = 'sync_renamed_columns'
                                    AND p.pronamespace::regnamespace::text = 'runbook') LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER %I', {reg}::regclass, trig.tgname);
        disabled := disabled || (trig.tgenabled::text || trig.tgname::text);
    END LOOP;
    EXECUTE format('WITH back AS (DELETE FROM {qt} qq WHERE qq.migration_id = %L RETURNING qq.row_data) '
                   'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM back, '
                   'jsonb_populate_record(NULL::%s, back.row_data) AS r',
                   current_setting('runbook.migration_id'), {reg}::regclass, cols, vals, {reg}::regclass);
    FOR i IN 1 .. coalesce(array_length(disabled, 1), 0) LOOP
        EXECUTE format('ALTER TABLE %s %s TRIGGER %I', {reg}::regclass,
                       CASE left(disabled[i], 1) WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                                 ELSE 'ENABLE' END, substr(disabled[i], 2));
    END LOOP;
END
$restore$;"""
