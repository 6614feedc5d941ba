"""libcst codemod (plan Week 0 Day 5, Task 3.2): the orchestrator and the executor API check
the caller's rights for a pattern.

Rights come from the X-DawsOS-Rights header (comma-separated): `patterns:execute` grants every
pattern, `pattern:<id>` grants one. The orchestrator gains `can_execute`, `PatternForbidden`,
`authorize()` (raises, and writes an audit_log row "pattern.denied") and writes an audit_log
row "pattern.execute" per run it starts, so "a refused caller ran nothing" is observable. The
API refuses with 403 before reading the body; run_pattern enforces it too, for other callers.
Re-running on changed code changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from runbook.errors import RunbookError
from runbook.tasks.code.text_diff import diff_files

ORCHESTRATOR = Path("backend/app/core/pattern_orchestrator.py")
API = Path("backend/app/main.py")
RIGHTS_HEADER = "X-DawsOS-Rights"
ALL_PATTERNS_RIGHT = "patterns:execute"

MODULE_CODE = '''
ALL_PATTERNS_RIGHT = "patterns:execute"


class PatternForbidden(PermissionError):
    """The caller holds neither `patterns:execute` nor `pattern:<id>`."""

    def __init__(self, pattern_id: str):
        super().__init__(f"not allowed to execute pattern {pattern_id!r}")
        self.pattern_id = pattern_id


def can_execute(rights: list[str] | None, pattern_id: str) -> bool:
    granted = {r.strip() for r in rights or []}
    return ALL_PATTERNS_RIGHT in granted or f"pattern:{pattern_id}" in granted
'''

METHODS_CODE = '''
class _:
    async def authorize(self, pattern_id: str, rights: list[str] | None) -> None:
        """Raise PatternForbidden (and audit the refusal) unless rights grant the pattern."""
        if not can_execute(rights, pattern_id):
            await self._audit("pattern.denied", pattern_id, rights)
            raise PatternForbidden(pattern_id)

    async def _audit(self, action: str, pattern_id: str, rights: list[str] | None) -> None:
        # best effort: an audit outage is logged, it does not stop the patterns
        try:
            async with database.get_pool().acquire() as conn:
                # the request carries no verified user yet: the system administrator acts
                await conn.execute(
                    "INSERT INTO audit_log (user_id, action, resource_type, resource_id, details)"
                    " VALUES ('00000000-0000-0000-0000-000000000000', $1, 'pattern', $2, $3::jsonb)",
                    action, pattern_id,
                    json.dumps({"actor": "pattern_orchestrator", "rights": sorted(rights or [])}))
        except Exception as exc:  # noqa: BLE001
            log.warning("audit %s of %s not written: %s", action, pattern_id, exc)
'''

RUN_CHECK_CODE = "await self.authorize({pid}, rights)\n"
RUN_AUDIT_CODE = 'await self._audit("pattern.execute", {pid}, rights)\n'

API_HELPER_CODE = '''
def _forbidden(pattern_id: str) -> JSONResponse:
    return JSONResponse(status_code=403, content={
        "error": "forbidden", "pattern_id": pattern_id,
        "detail": f"requires right patterns:execute or pattern:{pattern_id}"})
'''

API_CHECK_CODE = '''
try:
    await request.app.state.orchestrator.authorize({pid}, _rights(request))
except PatternForbidden:
    return _forbidden({pid})
'''


@dataclass
class AuthzReport:
    files: dict[str, tuple[str, str]] = field(default_factory=dict)

    def diff(self) -> str:
        return diff_files(self.files)

    def as_dict(self) -> dict:
        return {"files": len(self.files), "changed": sorted(self.files), "diff": self.diff()}


def _parse(source: str, path: str) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise RunbookError(f"{path}: not valid Python ({exc.message} at line {exc.raw_line})") from None


def _defines(module: cst.Module, name: str) -> bool:
    return any(isinstance(s, (cst.ClassDef, cst.FunctionDef)) and s.name.value == name
               for s in module.body)


def _blank2(stmt):
    return stmt.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])


def _statements(code: str) -> list[cst.BaseStatement]:
    return list(cst.parse_module(code).body)


def _param_names(fn: cst.FunctionDef) -> list[str]:
    return [p.name.value for p in fn.params.params]


def _insert_at_body_start(fn: cst.FunctionDef, stmts: list[cst.BaseStatement]) -> cst.FunctionDef:
    """New statements first in fn's body (after its docstring, if any)."""
    body = list(fn.body.body)
    at = 1 if body and isinstance(body[0], cst.SimpleStatementLine) and body[0].body \
        and isinstance(body[0].body[0], cst.Expr) and isinstance(body[0].body[0].value, cst.SimpleString) else 0
    return fn.with_changes(body=fn.body.with_changes(body=body[:at] + stmts + body[at:]))


class _Orchestrator(cst.CSTTransformer):
    def __init__(self, path: str):
        self.path = path
        self.done = False

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if updated.name.value != "PatternOrchestrator":
            return updated
        body = list(updated.body.body)
        idx = next((i for i, s in enumerate(body)
                    if isinstance(s, cst.FunctionDef) and s.name.value == "run_pattern"), None)
        if idx is None:
            raise RunbookError(f"{self.path}: PatternOrchestrator.run_pattern not found")
        run = body[idx]
        params = _param_names(run)
        if run.asynchronous is None or "rights" not in params or len(params) < 2:
            raise RunbookError(f"{self.path}: run_pattern must be `async def run_pattern(self, "
                               "pattern_id, ..., rights=...)` to add the rights check")
        run = _insert_at_body_start(run, _statements(RUN_CHECK_CODE.format(pid=params[1])))
        # audit once the pattern is known to exist (after the get_pattern lookup, if there is one)
        stmts = [_drop_stale_comment(s) for s in run.body.body]
        at = next((i + 1 for i, s in enumerate(stmts) if "get_pattern(" in _code(s)), 1)
        stmts[at:at] = _statements(RUN_AUDIT_CODE.format(pid=params[1]))
        run = run.with_changes(body=run.body.with_changes(body=stmts))
        methods = [m.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
                   for m in cst.parse_module(METHODS_CODE).body[0].body.body]
        self.done = True
        return updated.with_changes(body=updated.body.with_changes(
            body=body[:idx] + [run] + methods + body[idx + 1:]))


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _drop_stale_comment(stmt):
    """The old "authorization is not enforced yet" comment is no longer true."""
    lines = [ln for ln in stmt.leading_lines
             if not (ln.comment and "not enforced" in ln.comment.value.lower())]
    return stmt.with_changes(leading_lines=lines)


def rewrite_orchestrator(source: str, path: str = str(ORCHESTRATOR)) -> str:
    module = _parse(source, path)
    if _defines(module, "PatternForbidden"):
        return source
    t = _Orchestrator(path)
    module = module.visit(t)
    if not t.done:
        raise RunbookError(f"{path}: class PatternOrchestrator not found")
    body = list(module.body)
    at = next((i for i, s in enumerate(body) if isinstance(s, cst.ClassDef)
               and s.name.value == "PatternOrchestrator"), len(body))
    new = _statements(MODULE_CODE)
    new[0] = _blank2(new[0])
    body = body[:at] + new + [_blank2(body[at])] + body[at + 1:]
    module = module.with_changes(body=body)
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, "json")
    AddImportsVisitor.add_needed_import(context, "app.core", "database")
    return AddImportsVisitor(context).transform_module(module).code


class _Api(cst.CSTTransformer):
    def __init__(self, path: str):
        self.path = path
        self.found = False
        self.in_execute = False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "execute_pattern":
            self.in_execute = True

    def leave_Try(self, original: cst.Try, updated: cst.Try) -> cst.Try:
        if not self.in_execute or "run_pattern" not in _code(original.body):
            return updated
        handler = cst.ExceptHandler(
            body=cst.IndentedBlock([cst.parse_statement("return _forbidden(pattern_id)")]),
            type=cst.Name("PatternForbidden"))
        return updated.with_changes(handlers=[handler, *updated.handlers])

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if updated.name.value != "execute_pattern":
            return updated
        self.in_execute = False
        params = _param_names(updated)
        if updated.asynchronous is None or "request" not in params or not params:
            raise RunbookError(f"{self.path}: execute_pattern must be `async def "
                               "execute_pattern(pattern_id, request)` to add the rights check")
        self.found = True
        return _insert_at_body_start(updated, _statements(API_CHECK_CODE.format(pid=params[0])))


def rewrite_api(source: str, path: str = str(API)) -> str:
    module = _parse(source, path)
    if _defines(module, "_forbidden"):
        return source
    if not _defines(module, "_rights"):
        raise RunbookError(f"{path}: _rights(request) (reads {RIGHTS_HEADER}) not found")
    t = _Api(path)
    module = module.visit(t)
    if not t.found:
        raise RunbookError(f"{path}: execute_pattern endpoint not found")
    body = list(module.body)
    at = next(i for i, s in enumerate(body) if isinstance(s, cst.FunctionDef) and s.name.value == "_rights")
    helper = _blank2(_statements(API_HELPER_CODE)[0])
    module = module.with_changes(body=body[:at + 1] + [helper] + body[at + 1:])
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, "app.core.pattern_orchestrator", "PatternForbidden")
    return AddImportsVisitor(context).transform_module(module).code


def add_authorization(repo: Path, dry_run: bool = False) -> AuthzReport:
    """Apply the codemod to a checkout (or only report it with dry_run)."""
    repo = Path(repo)
    report = AuthzReport()
    for rel, rewrite in ((ORCHESTRATOR, rewrite_orchestrator), (API, rewrite_api)):
        path = repo / rel
        if not path.is_file():
            raise RunbookError(f"{path}: not found")
        old = path.read_text(encoding="utf-8")
        new = rewrite(old, rel.as_posix())
        if new != old:
            report.files[rel.as_posix()] = (old, new)
    if not dry_run:
        for rel, (_old, text) in report.files.items():
            (repo / rel).write_text(text, encoding="utf-8")
    return report
