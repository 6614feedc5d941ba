"""libcst codemod: the plan's connection pool (Week 0, Task 2.3) in the target's code.

backend/app/core/database.py
  * module constants POOL_MIN_SIZE / POOL_MAX_SIZE / POOL_TIMEOUT / POOL_COMMAND_TIMEOUT
    (added after DATABASE_URL, or updated in place if they exist);
  * every `asyncpg.create_pool(...)` call gets min_size / max_size / timeout /
    command_timeout keyword arguments naming those constants (replacing any it had);
  * `pool_health()`: a round trip through a pooled connection plus the pool's settings and
    state; it never raises, so /health can always report it.
backend/app/main.py
  * the dict(s) the `/health` route returns gain `"pool": await <database>.pool_health()`.

Idempotent: a second run changes nothing. Formatting and comments elsewhere are kept (libcst).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.metadata import PositionProvider

from runbook.errors import RunbookError
from runbook.tasks.code.text_diff import unified_diff

DATABASE_PY = Path("backend/app/core/database.py")
MAIN_PY = Path("backend/app/main.py")

# the plan's values; constant name -> (create_pool keyword, value, comment)
POOL_SETTINGS: dict[str, tuple[str, int, str]] = {
    "POOL_MIN_SIZE": ("min_size", 5, "connections kept open"),
    "POOL_MAX_SIZE": ("max_size", 20, "upper bound under load"),
    "POOL_TIMEOUT": ("timeout", 30, "seconds to open a connection"),
    "POOL_COMMAND_TIMEOUT": ("command_timeout", 60, "seconds a query may run"),
}

POOL_HEALTH_SRC = '''

async def pool_health() -> dict:
    """Pool settings and state, and a SELECT 1 through a pooled connection (for /health).
    The pool_* values are read from the live pool and connection, not from the constants."""
    import time

    info = {"min_size": POOL_MIN_SIZE, "max_size": POOL_MAX_SIZE, "timeout": POOL_TIMEOUT,
            "command_timeout": POOL_COMMAND_TIMEOUT}
    try:
        pool = get_pool()
        start = time.perf_counter()
        async with pool.acquire(timeout=POOL_TIMEOUT) as conn:
            await conn.fetchval("SELECT 1")
            live_command_timeout = conn._config.command_timeout
        info.update(healthy=True, check_ms=round((time.perf_counter() - start) * 1000, 1),
                    size=pool.get_size(), idle=pool.get_idle_size(),
                    pool_min_size=pool.get_min_size(), pool_max_size=pool.get_max_size(),
                    pool_timeout=pool._connect_kwargs.get("timeout"),
                    pool_command_timeout=live_command_timeout)
    except Exception as exc:  # reported, not raised: /health shows why
        info.update(healthy=False, error=f"{type(exc).__name__}: {exc}")
    return info
'''


@dataclass
class PoolReport:
    changed: list[str] = field(default_factory=list)
    calls_configured: int = 0
    diffs: list[str] = field(default_factory=list)

    def diff(self) -> str:
        return "".join(self.diffs)


# -- database.py ------------------------------------------------------------------------------

def _is_create_pool(call: cst.Call, bare_name: bool) -> bool:
    f = call.func
    if m.matches(f, m.Attribute(value=m.Name("asyncpg"), attr=m.Name("create_pool"))):
        return True
    return bare_name and m.matches(f, m.Name("create_pool"))


class _PoolConfig(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, bare_name: bool):
        self.bare_name = bare_name
        self.calls = 0
        self.constants_seen: set[str] = set()
        self.indent = ""

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> bool:
        self.indent = " " * self.get_metadata(PositionProvider, node).start.column
        return True

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if not _is_create_pool(original, self.bare_name):
            return updated
        self.calls += 1
        kwargs = {kw: const for const, (kw, _v, _c) in POOL_SETTINGS.items()}
        args = [a for a in updated.args if not (a.keyword and a.keyword.value in kwargs)]
        args += [cst.Arg(keyword=cst.Name(kw), value=cst.Name(const),
                         equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                               whitespace_after=cst.SimpleWhitespace("")))
                 for kw, const in kwargs.items()]
        # one argument per line, as the plan writes it
        inner = self.indent + "    "
        line = cst.ParenthesizedWhitespace(indent=False, first_line=cst.TrailingWhitespace(),
                                           last_line=cst.SimpleWhitespace(inner))
        last = cst.ParenthesizedWhitespace(indent=False, first_line=cst.TrailingWhitespace(),
                                           last_line=cst.SimpleWhitespace(self.indent))
        args = [a.with_changes(comma=cst.Comma(whitespace_after=last if i == len(args) - 1 else line))
                for i, a in enumerate(args)]
        return updated.with_changes(args=args, whitespace_before_args=line)

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        # constants that exist already: set the plan's value (idempotent)
        target = original.targets[0].target if len(original.targets) == 1 else None
        if isinstance(target, cst.Name) and target.value in POOL_SETTINGS:
            self.constants_seen.add(target.value)
            return updated.with_changes(value=cst.Integer(str(POOL_SETTINGS[target.value][1])))
        return updated


def _constants_block() -> list[cst.BaseStatement]:
    lines = [f"{name} = {value}  # {comment}" for name, (_kw, value, comment) in POOL_SETTINGS.items()]
    stmts = list(cst.parse_module("\n".join(lines) + "\n").body)
    first = stmts[0]
    stmts[0] = first.with_changes(leading_lines=[
        cst.EmptyLine(), cst.EmptyLine(comment=cst.Comment("# Connection pool (refactoring plan, Week 0 Task 2.3)"))])
    return stmts


def _imports_create_pool(module: cst.Module) -> bool:
    """`from asyncpg import create_pool` makes a bare create_pool(...) the asyncpg one."""
    pattern = m.ImportFrom(module=m.Name("asyncpg"),
                           names=[m.ZeroOrMore(), m.ImportAlias(name=m.Name("create_pool")), m.ZeroOrMore()])
    return any(m.matches(small, pattern) for stmt in module.body
               if isinstance(stmt, cst.SimpleStatementLine) for small in stmt.body)


def _defines(module: cst.Module, name: str) -> bool:
    return any(m.matches(s, m.FunctionDef(name=m.Name(name))) for s in module.body)


def _insert_constants(module: cst.Module) -> cst.Module:
    """After the DATABASE_URL assignment, else after the last import."""
    body = list(module.body)
    at = None
    for i, stmt in enumerate(body):
        if m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name("DATABASE_URL"))])])):
            at = i + 1
            break
        if m.matches(stmt, m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()])):
            at = i + 1
    at = len(body) if at is None else at
    return module.with_changes(body=body[:at] + _constants_block() + body[at:])


def configure_database_py(source: str, rel: str = str(DATABASE_PY)) -> tuple[str, int]:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise RunbookError(f"{rel}: not valid Python ({exc.message})") from None
    tx = _PoolConfig(bare_name=_imports_create_pool(module))
    module = cst.MetadataWrapper(module).visit(tx)
    if tx.calls == 0:
        raise RunbookError(f"{rel}: no asyncpg.create_pool(...) call to configure")
    if tx.constants_seen != set(POOL_SETTINGS):
        if tx.constants_seen:
            missing = sorted(set(POOL_SETTINGS) - tx.constants_seen)
            raise RunbookError(f"{rel}: has some pool constants but not {', '.join(missing)}; fix by hand")
        module = _insert_constants(module)
    if not _defines(module, "pool_health"):
        if not _defines(module, "get_pool"):
            raise RunbookError(f"{rel}: no get_pool() for pool_health() to report on")
        extra = cst.parse_module(POOL_HEALTH_SRC.lstrip("\n")).body
        first = extra[0].with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        module = module.with_changes(body=[*module.body, first, *extra[1:]])
    return module.code, tx.calls


# -- main.py ----------------------------------------------------------------------------------

def _database_alias(module: cst.Module) -> str | None:
    """The name main.py imports the database module under (`from app.core import database`)."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if m.matches(alias.name, m.Name("database")):
                        return alias.asname.name.value if alias.asname else "database"
    return None


class _HealthPool(cst.CSTTransformer):
    def __init__(self, alias: str):
        self.alias = alias
        self.in_health = 0
        self.found = False
        self.changed = 0

    @staticmethod
    def _is_health(node: cst.FunctionDef) -> bool:
        return any(m.matches(d.decorator, m.Call(func=m.Attribute(attr=m.Name("get")),
                                                 args=[m.Arg(value=m.SimpleString('"/health"') | m.SimpleString("'/health'")),
                                                       m.ZeroOrMore()]))
                   for d in node.decorators)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if self._is_health(node):
            self.in_health += 1
            self.found = True
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if self._is_health(original):
            self.in_health -= 1
        return updated

    def leave_Return(self, original: cst.Return, updated: cst.Return) -> cst.Return:
        if not self.in_health or not isinstance(updated.value, cst.Dict):
            return updated
        keys = [e.key.evaluated_value for e in updated.value.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)]
        if "pool" in keys:
            return updated
        value = cst.parse_expression(f"await {self.alias}.pool_health()")
        elements = [e.with_changes(comma=cst.MaybeSentinel.DEFAULT) for e in updated.value.elements]
        elements.append(cst.DictElement(key=cst.SimpleString('"pool"'), value=value))
        self.changed += 1
        return updated.with_changes(value=updated.value.with_changes(elements=elements))


def health_reports_pool(source: str, rel: str = str(MAIN_PY)) -> str:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise RunbookError(f"{rel}: not valid Python ({exc.message})") from None
    alias = _database_alias(module)
    if alias is None:
        raise RunbookError(f"{rel}: does not import the database module (`from app.core import database`)")
    tx = _HealthPool(alias)
    module = module.visit(tx)
    if not tx.found:
        raise RunbookError(f"{rel}: no @app.get(\"/health\") route")
    return module.code


# -- the codemod ------------------------------------------------------------------------------

def configure_pool(repo: Path, dry_run: bool = False) -> PoolReport:
    repo = Path(repo)
    report = PoolReport()
    edits = []
    for rel, fn in ((DATABASE_PY, configure_database_py), (MAIN_PY, health_reports_pool)):
        path = repo / rel
        if not path.exists():
            raise RunbookError(f"{path}: not found (the pool codemod edits {DATABASE_PY} and {MAIN_PY})")
        with open(path, encoding="utf-8", newline="") as f:
            before = f.read()
        out = fn(before, str(rel))
        after, calls = out if isinstance(out, tuple) else (out, 0)
        report.calls_configured += calls
        if after != before:
            report.changed.append(rel.as_posix())
            report.diffs.append(unified_diff(rel.as_posix(), before, after))
            edits.append((path, after))
    if not dry_run:
        for path, text in edits:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    return report
