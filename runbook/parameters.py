"""What a flow parameter may be, declared once as a type (Annotated + pydantic Field): the flow
signatures carry it (Prefect's UI form and its validation), and the command line checks a value
against it before anything starts, refusing in one line that names the parameter and what is
allowed."""
from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import Field, TypeAdapter, ValidationError

from runbook.errors import RunbookError

BatchSize = Annotated[int, Field(ge=1, le=1_000_000, description="rows per backfill batch")]
LockTimeoutMs = Annotated[int, Field(ge=10, le=600_000, description="lock_timeout for DDL and batches (ms)")]
SessionTimeoutMs = Annotated[int, Field(ge=100, le=86_400_000, description="a session timeout (ms)")]
BatchBudgetMs = Annotated[float, Field(ge=0, le=60_000, description="time a backfill batch may hold rows + WAL (ms; 0 = fixed batches)")]
BackfillWorkers = Annotated[int, Field(ge=1, le=16, description="sessions backfilling one table at once")]
WalRateMbS = Annotated[float, Field(gt=0, le=10_000, description="cap on the backfill's WAL rate (MB/s)")]
CommitMs = Annotated[float, Field(gt=0, le=60_000, description="a backfill batch whose commit (WAL fsync) takes longer rests (ms)")]
# a branch, tag or commit of TARGET_REPO (git's own ref-name rules, checked by the change-set:ref gate)
ChangeRef = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/@{}^~-]*$",
                                 description="the change set: a branch, tag or commit of TARGET_REPO")]


def _bounds(metadata: tuple) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for m in metadata:
        for c in getattr(m, "metadata", None) or [m]:
            for kind in (at.Ge, at.Gt, at.Le, at.Lt):
                if isinstance(c, kind):
                    key = kind.__name__.lower()
                    found[key] = getattr(c, key)
    return found


def allowed(annotation: Any) -> str:
    """In words, what `annotation` accepts ("an integer from 1 to 1000000", "'staging' or
    'production'", "true or false", ...)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        b = _bounds(tuple(meta))
        text = allowed(base)
        if "ge" in b and "le" in b:
            return f"{text} from {b['ge']} to {b['le']}"
        parts = [f"{w} {b[k]}" for k, w in (("gt", "greater than"), ("ge", "at least"),
                                            ("lt", "less than"), ("le", "at most")) if k in b]
        return f"{text} {' and '.join(parts)}".strip()
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(allowed(a) for a in get_args(annotation) if a is not type(None)) + " (or unset)"
    if origin in (list, tuple):
        return "a comma-separated list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "text"}.get(annotation, str(annotation))


def _accepts_list(annotation: Any) -> bool:
    if get_origin(annotation) in (list, tuple):
        return True
    return any(_accepts_list(a) for a in get_args(annotation) if get_origin(annotation) in (Union, types.UnionType))


def check(name: str, annotation: Any, value: Any) -> Any:
    """`value` as `annotation` wants it (a command-line string converted), or RunbookError:
    "parameter NAME must be ALLOWED, not VALUE"."""
    if isinstance(value, str) and _accepts_list(annotation):
        value = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        raise RunbookError(f"parameter {name} must be {allowed(annotation)}, not {value!r}") from None


def check_all(fn: Callable, values: dict[str, Any], what: str) -> dict[str, Any]:
    """Every value checked against `fn`'s own parameter of that name; a name `fn` does not
    take is refused, naming the ones it does."""
    params = {p.name: p for p in inspect.signature(fn).parameters.values()
              if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    out = {}
    for name, value in values.items():
        if name not in params:
            raise RunbookError(f"parameter {name} is not a parameter of {what}; "
                               f"it takes: {', '.join(params)}")
        annotation = params[name].annotation
        out[name] = value if annotation is inspect.Parameter.empty else check(name, annotation, value)
    return out
