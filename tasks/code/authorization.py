"""libcst codemod (plan Week 0 Day 5, Task 3.2): every route and the orchestrator check the
caller's rights, taken from the verified token, never from anything the client sets.

The target already authenticates (a signed JWT bearer token: `Depends(require_auth)` gives the
verified user and role; the role's rights are decided server-side). What it lacks is
authorization, and its pattern endpoint passed rights read from a header the client sets
(X-DawsOS-Rights). The codemod:

- orchestrator: `can_execute`, `PatternForbidden`, `authorize()` (raises, and writes an
  audit_log row "pattern.denied") and an audit_log row "pattern.execute" per run it starts,
  both naming the verified user (`details.sub`), so "a refused caller ran nothing" is
  observable. Both `run_pattern` signatures are handled: the demo's
  `run_pattern(pattern_id, inputs, rights=...)` (a `user_id` keyword is added) and the real
  DawsOS `run_pattern(pattern_id, ctx, inputs)` (rights and user from the request context).
- pattern API: rights and user from the verified identity; the header reader is removed; 403
  before the body is read.
- every other route: its `Depends(require_auth)` becomes `Depends(require_right("<resource>:
  read|write"))` (GET reads, other methods write; the resource is the router's first tag, or
  "patterns" for the app's own routes); a route with no identity at all gets one; the routes
  in the target's public list stay open. `require_right` is added to the auth module.
Re-running on changed code changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from runbook.errors import RunbookError
from runbook.target import DAWSOS
from runbook.tasks.code.text_diff import diff_files

ORCHESTRATOR = Path("backend/app/core/pattern_orchestrator.py")
API = Path("backend/app/main.py")
ROUTERS = Path("backend/app/api")
AUTH = Path("backend/app/auth/dependencies.py")
HEADER_READER = "_rights"          # the pre-change API's reader of the client-set rights header
IDENTITY_DEPENDENCY = "require_auth"
RIGHT_DEPENDENCY = "require_right"
ALL_PATTERNS_RIGHT = "patterns:execute"
ROUTE_METHODS = ("get", "post", "put", "patch", "delete")

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
    async def authorize(self, pattern_id: str, rights, user_id: str | None = None) -> None:
        """Raise PatternForbidden (and audit the refusal) unless the verified rights grant it."""
        if not can_execute(list(rights or []), pattern_id):
            await self._audit("pattern.denied", pattern_id, rights, user_id)
            raise PatternForbidden(pattern_id)

    async def _audit(self, action: str, pattern_id: str, rights, user_id: str | None) -> None:
        # best effort: an audit outage is logged, it does not stop the patterns
        try:
            async with database.get_pool().acquire() as conn:
                # the token's user need not be a users row: the system administrator records
                # it, and the verified user goes in details.sub
                await conn.execute(
                    "INSERT INTO audit_log (user_id, action, resource_type, resource_id, details)"
                    " VALUES ('00000000-0000-0000-0000-000000000000', $1, 'pattern', $2, $3::jsonb)",
                    action, pattern_id,
                    json.dumps({"actor": "pattern_orchestrator", "sub": user_id,
                                "rights": sorted(rights or [])}))
        except Exception as exc:  # noqa: BLE001
            log.warning("audit %s of %s not written: %s", action, pattern_id, exc)
'''

# the verified rights and user, as each run_pattern signature carries them
DEMO_CALLER = ("rights", "user_id")
CTX_CALLER = ('getattr({ctx}, "rights", None)', 'str({ctx}.user_id)')
RUN_CHECK_CODE = "await self.authorize({pid}, {rights}, {user})\n"
RUN_AUDIT_CODE = 'await self._audit("pattern.execute", {pid}, {rights}, {user})\n'

API_HELPER_CODE = '''
def _forbidden(pattern_id: str) -> JSONResponse:
    return JSONResponse(status_code=403, content={
        "error": "forbidden", "pattern_id": pattern_id,
        "detail": f"requires right patterns:execute or pattern:{pattern_id}"})
'''

API_CHECK_CODE = '''
try:
    await request.app.state.orchestrator.authorize({pid}, {user}.rights, {user}.user_id)
except PatternForbidden:
    return _forbidden({pid})
'''

AUTH_RIGHT_CODE = '''
def require_right(right: str):
    """FastAPI dependency factory: the verified caller if its role holds `right`, else 403."""
    async def holding_right(request: Request) -> Identity:
        user = await require_auth(request)
        if right not in user.rights:
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=f"requires right {right}")
        return user
    return holding_right
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
        if run.asynchronous is None or len(params) < 3:
            raise RunbookError(f"{self.path}: run_pattern must be `async def run_pattern(self, "
                               "pattern_id, ...)` to add the rights check")
        if "ctx" in params:           # the real DawsOS: run_pattern(pattern_id, ctx, inputs)
            rights, user = (c.format(ctx="ctx") for c in CTX_CALLER)
        elif "rights" in params:      # the demo: run_pattern(pattern_id, inputs, rights=...)
            rights, user = DEMO_CALLER
            if "user_id" not in params:
                run = _add_keyword_param(run, "user_id", "str | None", "None")
        else:
            raise RunbookError(f"{self.path}: run_pattern carries neither a request context "
                               "(ctx) nor the caller's rights: nothing to authorize from")
        code = {"pid": params[1], "rights": rights, "user": user}
        run = _insert_at_body_start(run, _statements(RUN_CHECK_CODE.format(**code)))
        # audit once the pattern is known to exist (after the get_pattern lookup, if there is one)
        stmts = [_drop_stale_comment(s) for s in run.body.body]
        at = next((i + 1 for i, s in enumerate(stmts) if "get_pattern(" in _code(s)), 1)
        stmts[at:at] = _statements(RUN_AUDIT_CODE.format(**code))
        run = run.with_changes(body=run.body.with_changes(body=stmts))
        methods = [m.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
                   for m in cst.parse_module(METHODS_CODE).body[0].body.body]
        self.done = True
        return updated.with_changes(body=updated.body.with_changes(
            body=body[:idx] + [run] + methods + body[idx + 1:]))


def _add_keyword_param(fn: cst.FunctionDef, name: str, annotation: str, default: str) -> cst.FunctionDef:
    param = cst.Param(name=cst.Name(name), annotation=cst.Annotation(cst.parse_expression(annotation)),
                      default=cst.parse_expression(default))
    return fn.with_changes(params=fn.params.with_changes(params=[*fn.params.params, param]))


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


def _is_call_to(node, name: str) -> bool:
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == name


def _identity_param(fn: cst.FunctionDef) -> cst.Param | None:
    """The parameter that receives the verified caller: `= Depends(require_auth)` (or already
    `Depends(require_right(...))`)."""
    for p in fn.params.params:
        if _is_call_to(p.default, "Depends") and p.default.args and (
                (isinstance(p.default.args[0].value, cst.Name)
                 and p.default.args[0].value.value == IDENTITY_DEPENDENCY)
                or _is_call_to(p.default.args[0].value, RIGHT_DEPENDENCY)):
            return p
    return None


def _route(fn: cst.FunctionDef) -> tuple[str, str] | None:
    """(method, path) of a FastAPI route function (`@router.get("/x")`, `@app.post(...)`)."""
    for d in fn.decorators:
        call = d.decorator
        if (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
                and call.func.attr.value in ROUTE_METHODS and call.args
                and isinstance(call.args[0].value, cst.SimpleString)):
            return call.func.attr.value, call.args[0].value.evaluated_value
    return None


def _router_resource(module: cst.Module, default: str) -> str:
    """The first tag of the module's `APIRouter(tags=[...])`, else `default`."""
    found: list[str] = []

    class _Tags(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if _is_call_to(node, "APIRouter"):
                for arg in node.args:
                    if arg.keyword and arg.keyword.value == "tags" and isinstance(arg.value, cst.List) \
                            and arg.value.elements and isinstance(arg.value.elements[0].value, cst.SimpleString):
                        found.append(arg.value.elements[0].value.evaluated_value)
    module.visit(_Tags())
    return found[0] if found else default


def route_right(resource: str, method: str) -> str:
    return f"{resource}:{'read' if method == 'get' else 'write'}"


class _Routes(cst.CSTTransformer):
    """Every route but the public ones and the pattern endpoint requires its right."""

    def __init__(self, resource: str, public: tuple[str, ...]):
        self.resource = resource
        self.public = public
        self.rights: dict[str, str] = {}

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        route = _route(updated)
        if route is None or route[1] in self.public or updated.name.value == "execute_pattern":
            return updated
        right = route_right(self.resource, route[0])
        self.rights[f"{route[0].upper()} {route[1]}"] = right
        dependency = cst.parse_expression(f'Depends({RIGHT_DEPENDENCY}("{right}"))')
        param = _identity_param(updated)
        if param is not None and _is_call_to(param.default.args[0].value, RIGHT_DEPENDENCY):
            return updated
        params = list(updated.params.params)
        if param is None:       # a route nobody authenticated: it gets the caller too
            params.append(cst.Param(name=cst.Name("caller"), default=dependency))
        else:
            params[params.index(param)] = param.with_changes(default=dependency)
        return updated.with_changes(params=updated.params.with_changes(params=params))


class _Api(cst.CSTTransformer):
    """The pattern endpoint: rights and user from the verified identity, 403 first."""

    def __init__(self, path: str):
        self.path = path
        self.found = False
        self.user: str | None = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value == "execute_pattern":
            param = _identity_param(node)
            if param is None:
                raise RunbookError(f"{self.path}: execute_pattern has no verified caller "
                                   f"(a parameter = Depends({IDENTITY_DEPENDENCY})) to take rights from")
            self.user = param.name.value

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        # run_pattern(..., rights=_rights(request)) -> the verified rights and user
        if self.user is None or not (isinstance(updated.func, cst.Attribute) and updated.func.attr.value == "run_pattern"):
            return updated
        args = [a.with_changes(value=cst.parse_expression(f"sorted({self.user}.rights)"))
                if a.keyword and a.keyword.value == "rights" else a for a in updated.args]
        if any(a.keyword and a.keyword.value == "rights" for a in updated.args) \
                and not any(a.keyword and a.keyword.value == "user_id" for a in updated.args):
            args.append(cst.Arg(keyword=cst.Name("user_id"), value=cst.parse_expression(f"{self.user}.user_id"),
                                equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                                      whitespace_after=cst.SimpleWhitespace(""))))
        return updated.with_changes(args=args)

    def leave_Try(self, original: cst.Try, updated: cst.Try) -> cst.Try:
        if self.user is None or "run_pattern" not in _code(original.body):
            return updated
        handler = cst.ExceptHandler(
            body=cst.IndentedBlock([cst.parse_statement("return _forbidden(pattern_id)")]),
            type=cst.Name("PatternForbidden"))
        return updated.with_changes(handlers=[handler, *updated.handlers])

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if updated.name.value != "execute_pattern":
            return updated
        params = _param_names(updated)
        if updated.asynchronous is None or "request" not in params:
            raise RunbookError(f"{self.path}: execute_pattern must be `async def "
                               "execute_pattern(pattern_id, request, user=Depends(...))` to add the rights check")
        self.found = True
        out = _insert_at_body_start(updated, _statements(API_CHECK_CODE.format(pid=params[0], user=self.user)))
        self.user = None
        return out


def _uses(module: cst.Module, name: str) -> bool:
    found = []

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                found.append(node)
    module.visit(_Names())
    return bool(found)


def _without(module: cst.Module, name: str) -> cst.Module:
    return module.with_changes(body=[s for s in module.body
                                     if not (isinstance(s, cst.FunctionDef) and s.name.value == name)])


def _with_imports(module: cst.Module, imports: list[tuple[str, str | None]]) -> str:
    context = CodemodContext()
    for mod, obj in imports:
        AddImportsVisitor.add_needed_import(context, mod, obj)
    return AddImportsVisitor(context).transform_module(module).code


def rewrite_routes(source: str, path: str, *, default_resource: str,
                   public: tuple[str, ...] = DAWSOS.public_routes) -> str:
    """Each route of a router module (or the app module) requires its right."""
    module = _parse(source, path)
    t = _Routes(_router_resource(module, default_resource), public)
    changed = module.visit(t)
    if changed.code == module.code:
        return source
    return _with_imports(changed, [("fastapi", "Depends"), ("app.auth.dependencies", RIGHT_DEPENDENCY)])


def rewrite_api(source: str, path: str = str(API)) -> str:
    module = _parse(source, path)
    if not _defines(module, "_forbidden"):
        t = _Api(path)
        module = module.visit(t)
        if not t.found:
            raise RunbookError(f"{path}: execute_pattern endpoint not found")
        module = _without(module, HEADER_READER)      # rights never come from the client again
        if _uses(module, HEADER_READER):
            raise RunbookError(f"{path}: {HEADER_READER}(request) (the client-set rights header) is "
                               "still used outside execute_pattern")
        body = list(module.body)
        at = next(i for i, s in enumerate(body) if isinstance(s, cst.FunctionDef) and _route(s))
        helper = _blank2(_statements(API_HELPER_CODE)[0])
        module = module.with_changes(body=body[:at] + [helper, _blank2(body[at])] + body[at + 1:])
        source = _with_imports(module, [("app.core.pattern_orchestrator", "PatternForbidden")])
    return rewrite_routes(source, path, default_resource="patterns")


def rewrite_auth(source: str, path: str = str(AUTH)) -> str:
    module = _parse(source, path)
    if _defines(module, RIGHT_DEPENDENCY):
        return source
    if not _defines(module, IDENTITY_DEPENDENCY):
        raise RunbookError(f"{path}: {IDENTITY_DEPENDENCY}() (the verified caller) not found")
    body = list(module.body) + [_blank2(_statements(AUTH_RIGHT_CODE)[0])]
    return _with_imports(module.with_changes(body=body),
                         [("fastapi", "HTTPException"), ("fastapi", "Request"), ("fastapi", "status")])


def add_authorization(repo: Path, dry_run: bool = False) -> AuthzReport:
    """Apply the codemod to a checkout (or only report it with dry_run)."""
    repo = Path(repo)
    report = AuthzReport()
    rewrites = [(ORCHESTRATOR, rewrite_orchestrator), (AUTH, rewrite_auth), (API, rewrite_api)]
    routers = sorted(p.relative_to(repo) for p in (repo / ROUTERS).glob("*.py") if p.name != "__init__.py")
    rewrites += [(rel, lambda s, path: rewrite_routes(s, path, default_resource=Path(path).stem))
                 for rel in routers]
    for rel, rewrite in rewrites:
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
