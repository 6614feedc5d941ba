"""User triggers a backfill would fire, and keeping them out of it.

A backfill's UPDATE fires the table's row triggers like any other update: DawsOS stamps
`updated_at` on every lot, which no revert can undo. Before a backfill the runbook lists the
enabled user triggers that fire on that UPDATE (the runbook's own sync triggers excepted; an
`UPDATE OF` trigger only if it names a backfilled column) and keeps them out:

* `session_replication_role = replica` in the backfill's session, when the role may set it and
  every such trigger is an ordinary (origin) one: they do not fire for that session only;
* otherwise, when the role owns the table: those triggers are disabled inside each batch's
  transaction and re-enabled (in their former mode) before it commits, so no other session
  ever sees them disabled (the ALTER's lock lasts one short batch);
* otherwise the backfill refuses, naming each trigger and the columns it would change, unless
  the operator accepted those triggers' effects by name.

`probe` measures what the triggers would change: a no-op update of one row in a transaction that
is rolled back, compared column by column.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from runbook.errors import RunbookError

_MODES = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER", "R": "ENABLE REPLICA TRIGGER"}


@dataclass
class Trigger:
    name: str
    enabled: str          # pg_trigger.tgenabled: O (origin), A (always), R (replica)
    function: str


def firing_triggers(conn: psycopg.Connection, rel: str, columns: list[str]) -> list[Trigger]:
    """Enabled user triggers on `rel` that an UPDATE setting `columns` fires."""
    rows = conn.execute(
        """SELECT t.tgname, t.tgenabled, t.tgfoid::regprocedure::text,
                  ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = t.tgrelid AND a.attnum = ANY(t.tgattr))
             FROM pg_trigger t
            WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgenabled <> 'D'
              AND (t.tgtype & 16) <> 0                                  -- fires on UPDATE
              AND NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                               WHERE p.oid = t.tgfoid AND n.nspname = 'runbook'
                                 AND p.proname = 'sync_renamed_columns')  -- the runbook's own
            ORDER BY t.tgname""", (rel,)).fetchall()
    return [Trigger(n, e, f) for n, e, f, of in rows if not of or set(of) & set(columns)]


def probe(conn: psycopg.Connection, rel: str, column: str) -> list[str]:
    """Columns of one row that a no-op UPDATE of `column` changes (through its triggers), as
    the backfill's session would run it; nothing is kept (the transaction is rolled back)."""
    changed: list[str] = []
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL runbook.backfill = 'on'")
        conn.execute("SET LOCAL lock_timeout = '2s'")
        row = conn.execute(sql.SQL(
            "WITH one AS (SELECT ctid AS tid, to_jsonb(rb_row) AS j FROM ONLY {rel} rb_row LIMIT 1),"
            " u AS (UPDATE ONLY {rel} rb_row SET {c} = rb_row.{c} FROM one WHERE rb_row.ctid = one.tid"
            " RETURNING one.j AS before, to_jsonb(rb_row) AS after)"
            " SELECT before, after FROM u").format(rel=sql.SQL(rel), c=sql.Identifier(column))).fetchone()
        if row:
            before, after = row
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return changed


def _may_set_replica(conn: psycopg.Connection) -> bool:
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL session_replication_role = replica")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def _owns(conn: psycopg.Connection, rel: str) -> bool:
    return conn.execute("SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = %s::regclass",
                        (rel,)).fetchone()[0]


@dataclass
class KeepOut:
    rel: str
    how: str                                   # none | replica | disable | accepted
    triggers: list[Trigger] = field(default_factory=list)

    def describe(self) -> str:
        names = ", ".join(t.name for t in self.triggers)
        return {"none": "no user trigger fires", "replica": f"session_replication_role = replica ({names})",
                "disable": f"disabled inside each batch ({names})",
                "accepted": f"fire, accepted by the operator ({names})"}[self.how]

    def enter_session(self, conn: psycopg.Connection) -> None:
        if self.how == "replica":
            conn.execute("SET session_replication_role = replica")

    def enter_batch(self, conn: psycopg.Connection) -> None:
        for t in self.triggers if self.how == "disable" else ():
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(sql.SQL(self.rel), sql.Identifier(t.name)))

    def leave_batch(self, conn: psycopg.Connection) -> None:
        for t in self.triggers if self.how == "disable" else ():
            conn.execute(sql.SQL("ALTER TABLE {} {} {}").format(
                sql.SQL(self.rel), sql.SQL(_MODES[t.enabled]), sql.Identifier(t.name)))


def plan(conn: psycopg.Connection, rel: str, columns: list[str], accepted: tuple[str, ...] = ()) -> KeepOut:
    """How the backfill of `columns` on `rel` keeps the user triggers out, or a refusal."""
    triggers = firing_triggers(conn, rel, columns)
    if not triggers:
        return KeepOut(rel, "none")
    if {t.name for t in triggers} <= set(accepted):
        return KeepOut(rel, "accepted", triggers)
    if all(t.enabled == "O" for t in triggers) and _may_set_replica(conn):
        return KeepOut(rel, "replica", triggers)
    if _owns(conn, rel):
        return KeepOut(rel, "disable", triggers)
    effects = probe(conn, rel, columns[0])
    raise RunbookError(
        f"the backfill of {rel} would fire {', '.join(t.name + ' (' + t.function + ')' for t in triggers)}, "
        f"changing {', '.join(c for c in effects if c not in columns) or 'nothing visible in the row'}; "
        "this role can neither set session_replication_role nor disable them (not the table's owner). "
        "Run as the owner, or accept their effects with accept_trigger_effects="
        + ",".join(t.name for t in triggers))
