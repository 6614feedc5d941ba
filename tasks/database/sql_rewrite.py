"""Rewriting database code that uses renamed columns, from its own definition text.

Identifiers are found by PostgreSQL's own scanner (pglast), so string constants, comments and
longer names that merely contain an old name (`new_qty_open`, `p_asof_date`) are left alone.
Views are rewritten on their parse tree: references move to the new column while every output
column keeps its name, so CREATE OR REPLACE VIEW keeps the view's interface, grants and
dependants.
"""
from __future__ import annotations

from pglast import ast, parse_sql
from pglast.parser import scan
from pglast.stream import RawStream

from runbook.errors import RunbookError


def _ident(token_text: str) -> str:
    """An identifier token as the catalog spells it (unquoted ones fold to lower case)."""
    if token_text.startswith('"') and token_text.endswith('"'):
        return token_text[1:-1].replace('""', '"')
    return token_text.lower()


def identifiers(text: str) -> set[str]:
    """Every identifier the SQL (or PL/pgSQL) text uses."""
    return {_ident(text[t.start:t.end + 1]) for t in _tokens(text) if t.name == "IDENT"}


def rename_identifiers(text: str, mapping: dict[str, str]) -> str:
    """`text` with every identifier token in `mapping` replaced (quoted if it needs it)."""
    out, last = [], 0
    for t in _tokens(text):
        if t.name != "IDENT":
            continue
        name = _ident(text[t.start:t.end + 1])
        if name in mapping:
            out += [text[last:t.start], _quote(mapping[name])]
            last = t.end + 1
    return "".join(out) + text[last:]


def _quote(name: str) -> str:
    return name if name.isidentifier() and name == name.lower() else '"' + name.replace('"', '""') + '"'


def _tokens(text: str):
    try:
        return scan(text)
    except Exception as exc:  # noqa: BLE001 - pglast raises its own parser errors
        raise RunbookError(f"cannot scan SQL text: {exc}") from None


def rewrite_view(definition: str, table: str, mapping: dict[str, str]) -> str:
    """The view's SELECT (pg_get_viewdef) with `table`'s columns renamed per `mapping`; output
    columns that were named after an old column keep that name (an alias is added)."""
    stmts = parse_sql(definition)
    if len(stmts) != 1:
        raise RunbookError(f"view definition is not one statement: {definition[:80]!r}")
    stmt = stmts[0].stmt
    aliases = _aliases_of(stmt, table)
    _keep_output_names(stmt, aliases, mapping)
    _walk(stmt, lambda n: _rename_ref(n, aliases, mapping))
    return RawStream()(stmt)


def _walk(node, fn) -> None:
    if isinstance(node, ast.Node):
        fn(node)
        for name in node.__slots__:
            _walk(getattr(node, name), fn)
    elif isinstance(node, (list, tuple)):
        for child in node:
            _walk(child, fn)


def _aliases_of(stmt, table: str) -> set[str]:
    """Names under which `table` appears in the query (its alias, or its own name)."""
    found: set[str] = set()

    def visit(n) -> None:
        if isinstance(n, ast.RangeVar) and n.relname == table:
            found.add(n.alias.aliasname if n.alias else n.relname)
    _walk(stmt, visit)
    return found


def _ref_column(n, aliases: set[str], mapping: dict[str, str]) -> str | None:
    """The old column a ColumnRef names (qualified by one of `aliases`, or unqualified)."""
    if not isinstance(n, ast.ColumnRef):
        return None
    fields = list(n.fields)
    if not fields or not isinstance(fields[-1], ast.String) or fields[-1].sval not in mapping:
        return None
    if len(fields) >= 2 and not (isinstance(fields[-2], ast.String) and fields[-2].sval in aliases):
        return None
    return fields[-1].sval


def _rename_ref(n, aliases: set[str], mapping: dict[str, str]) -> None:
    old = _ref_column(n, aliases, mapping)
    if old is not None:
        n.fields = (*n.fields[:-1], ast.String(sval=mapping[old]))


def _keep_output_names(stmt, aliases: set[str], mapping: dict[str, str]) -> None:
    selects = [stmt]
    while selects:
        s = selects.pop()
        if getattr(s, "op", None) not in (None, 0) and getattr(s, "larg", None) is not None:
            selects += [s.larg, s.rarg]       # UNION / INTERSECT / EXCEPT: each arm's names
            continue
        for target in s.targetList or ():
            old = _ref_column(target.val, aliases, mapping)
            if old is not None and not target.name:
                target.name = old
