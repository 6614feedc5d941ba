"""What the Week 3-4 gates share: a probe API (the deployed code served from a scratch
worktree, with probe patterns beside the shipped ones) and reading the error shape.

The probe API never touches the environment's checkout: it serves the deployed commit from
its own worktree, loads its patterns from a scratch `DAWSOS_PATTERNS_DIR` (the shipped ones
plus the probe's), uses the environment's database and the run's upstream stand-in, and is
stopped (worktree removed) when the block ends."""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.target import DAWSOS
from runbook.tasks.code import git_ops
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.deploy import api, deployed_commit

PATTERNS_DIR_SETTING = "DAWSOS_PATTERNS_DIR"


@contextmanager
def probe_api(ctx: RunContext, patterns: dict[str, dict] | None = None,
              environment: dict[str, str] | None = None) -> Iterator[ApiServer]:
    """A started API on the deployed code with `patterns` (id -> spec) added to the shipped
    ones, and `environment` added to its process environment (e.g. a planted secret)."""
    if ctx.api_url:
        raise RunbookError("the target API is external: a probe API needs TARGET_REPO's code served here "
                           "(run the Week 3 gates against a managed staging)")
    (ctx.workspace / "tmp").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=ctx.workspace / "tmp"))
    wt = git_ops.worktree(ctx.repo, scratch / "code", deployed_commit(ctx))
    patterns_dir = scratch / "patterns"
    shutil.copytree(wt / DAWSOS.patterns_dir, patterns_dir)
    for pattern_id, spec in (patterns or {}).items():
        (patterns_dir / f"{pattern_id}.json").write_text(json.dumps({"id": pattern_id, **spec}, indent=2))
    env = {**api(ctx).environment, PATTERNS_DIR_SETTING: str(patterns_dir), **(environment or {})}
    server = ApiServer(wt, ctx.database_url, jwt_secret=ctx.jwt_secret or api(ctx).jwt_secret,
                       log_path=scratch / "api.log", environment=env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        git_ops.remove_worktree(ctx.repo, wt)
        shutil.rmtree(scratch, ignore_errors=True)


def error_code(body: object) -> str | None:
    """The error code of a response body: the standard shape {"error": {"code": ...}}, or the
    older {"error": "code"}; None when the body names none."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return error.get("code")
    return error if isinstance(error, str) else None


def standard_error(body: object) -> bool:
    """The shape every Week 3 error has: {"error": {"code", "message", "request_id", "details"}}."""
    return (isinstance(body, dict) and isinstance(body.get("error"), dict)
            and {"code", "message", "request_id", "details"} <= set(body["error"]))
