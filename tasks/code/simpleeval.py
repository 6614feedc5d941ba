"""libcst codemod (plan Week 0 Day 5, Task 3.1): the pattern orchestrator's `eval()` becomes a
simpleeval evaluator bound to the step state, and the eval code path is removed.

    result = eval(safe_condition, {"__builtins__": {}}, state)
 -> result = evaluate_condition(safe_condition, state)

`evaluate_condition` (added to the orchestrator module) runs a stricter SimpleEval: names are
the step state, no functions, no calls at all (a method call such as `inputs.clear()` could
change the state), no f-strings, no `**`/shift/bit operators, and exactly one expression
(`ast.parse(mode="eval")`, so `a; b` or `x = 1` are errors, not silently truncated). The 13
patterns' conditions only read, compare and combine values, which all still work.
simpleeval is added to backend/requirements.txt. Re-running on changed code changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from runbook.errors import RunbookError
from runbook.tasks.code.requirements import add_requirement
from runbook.tasks.code.text_diff import diff_files

ORCHESTRATOR = Path("backend/app/core/pattern_orchestrator.py")
REQUIREMENTS = Path("backend/requirements.txt")
REQUIREMENT = "simpleeval>=1.0"
EVALUATOR = "evaluate_condition"

EVALUATOR_CODE = '''
CONDITION_OPERATORS = {  # conditions read, compare and combine values: no power/shift/bit ops
    node: fn for node, fn in DEFAULT_OPERATORS.items()
    if node not in (ast.Pow, ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.Invert)
}


class ConditionEvaluator(SimpleEval):
    """simpleeval for step conditions: names are the step state; no functions and no calls
    (a method call could change the state), no f-strings, one expression only."""

    def __init__(self, names: dict):
        super().__init__(operators=CONDITION_OPERATORS, functions={}, names=names)
        for node in (ast.Call, ast.JoinedStr, ast.FormattedValue, ast.Assign, ast.AugAssign):
            self.nodes.pop(node, None)

    def parse(self, expr: str) -> ast.expr:
        # mode="eval": statements and "a; b" are syntax errors instead of being truncated
        return ast.parse(expr.strip(), mode="eval").body


def evaluate_condition(expression: str, names: dict) -> Any:
    """Evaluate one condition against the step state; raises on anything not allowed."""
    return ConditionEvaluator(names).eval(expression)
'''


@dataclass
class SimpleevalReport:
    replaced: list[str] = field(default_factory=list)     # "file:line" of each eval() replaced
    files: dict[str, tuple[str, str]] = field(default_factory=dict)   # path -> (old, new)
    requirement: str = "present"                          # "added" | "present"

    def diff(self) -> str:
        return diff_files(self.files)

    def as_dict(self) -> dict:
        return {"files": len(self.files), "replaced": self.replaced, "requirement": self.requirement,
                "diff": self.diff()}


def _is_eval_call(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "eval"


class _ReplaceEval(cst.CSTTransformer):
    """eval(expr[, globals[, locals]]) -> evaluate_condition(expr, names): the names eval
    resolved (locals, else globals) become simpleeval's names."""
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, path: str):
        self.path = path
        self.lines: list[int] = []

    def visit_Call(self, node: cst.Call) -> None:
        if _is_eval_call(node):
            self.lines.append(self.get_metadata(PositionProvider, node).start.line)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not _is_eval_call(original):
            return updated
        args = [a for a in updated.args if a.keyword is None]
        if not args or len(args) != len(updated.args):
            line = self.get_metadata(PositionProvider, original).start.line
            raise RunbookError(f"{self.path}:{line}: eval() call of an unexpected form; edit it by hand")
        names = args[2].value if len(args) > 2 else args[1].value if len(args) > 1 else cst.Dict([])
        return updated.with_changes(func=cst.Name(EVALUATOR), args=[
            args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT), cst.Arg(names)])


def _insert_before_first_definition(module: cst.Module, code: str) -> cst.Module:
    new = list(cst.parse_module(code).body)
    body = list(module.body)
    at = next((i for i, s in enumerate(body) if isinstance(s, (cst.ClassDef, cst.FunctionDef))),
              len(body))
    if new:
        new[0] = new[0].with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    if at < len(body):
        body[at] = body[at].with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    return module.with_changes(body=body[:at] + new + body[at:])


def rewrite_orchestrator(source: str, path: str = str(ORCHESTRATOR)) -> tuple[str, list[str]]:
    """The orchestrator's source with eval() replaced; (source, ["path:line", ...])."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise RunbookError(f"{path}: not valid Python ({exc.message} at line {exc.raw_line})") from None
    wrapper = MetadataWrapper(module)
    replacer = _ReplaceEval(path)
    module = wrapper.visit(replacer)
    defined = any(isinstance(s, cst.FunctionDef) and s.name.value == EVALUATOR for s in module.body)
    if not replacer.lines:
        if defined:
            return source, []        # already converted
        raise RunbookError(f"{path}: no eval() call found and no {EVALUATOR}(); nothing to convert")
    if not defined:
        module = _insert_before_first_definition(module, EVALUATOR_CODE)
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, "ast")
    AddImportsVisitor.add_needed_import(context, "typing", "Any")
    AddImportsVisitor.add_needed_import(context, "simpleeval", "DEFAULT_OPERATORS")
    AddImportsVisitor.add_needed_import(context, "simpleeval", "SimpleEval")
    module = AddImportsVisitor(context).transform_module(module)
    return module.code, [f"{path}:{line}" for line in replacer.lines]


def convert(repo: Path, dry_run: bool = False) -> SimpleevalReport:
    """Apply the codemod to a checkout (or only report it with dry_run)."""
    repo = Path(repo)
    target = repo / ORCHESTRATOR
    if not target.is_file():
        raise RunbookError(f"{target}: pattern orchestrator not found")
    report = SimpleevalReport()
    old = target.read_text(encoding="utf-8")
    new, report.replaced = rewrite_orchestrator(old, ORCHESTRATOR.as_posix())
    if new != old:
        report.files[ORCHESTRATOR.as_posix()] = (old, new)
    req_path = repo / REQUIREMENTS
    req_old = req_path.read_text(encoding="utf-8") if req_path.exists() else ""
    req_new, added = add_requirement(req_old, REQUIREMENT)
    if added:
        report.requirement = "added"
        report.files[REQUIREMENTS.as_posix()] = (req_old, req_new)
    if not dry_run:
        for rel, (_old, text) in report.files.items():
            (repo / rel).write_text(text, encoding="utf-8")
    return report
