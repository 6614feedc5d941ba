"""Week 0 Day 5 (security fixes): the escape corpus against the new and the old evaluator, the
differential gate against a disagreeing evaluator, the evaluator CLI, 403 + audit through the
real API, and the flow end to end on staging (real PostgreSQL, Prefect, git, API, Slack
stand-in), including a failing gate that rolls everything back."""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from prefect.states import State
from typer.testing import CliRunner

from runbook.cli.app import app
from runbook.demo.workspace import TEMPLATE
from runbook.errors import GateFailed
from runbook.expectations.authorization import authorization_gate
from runbook.expectations.evaluator import (
    capture_states,
    differential_gate,
    find_eval_calls,
    load_corpus,
    run_corpus,
)
from runbook.expectations.smoke import sample_inputs
from runbook.flows.week0.day5 import security_fixes
from runbook.pg import connect
from runbook.tasks.code import git_ops
from runbook.tasks.code.authorization import add_authorization, rewrite_orchestrator
from runbook.tasks.code.simpleeval import convert
from runbook.tasks.target.api_server import ApiServer

ORCH = "backend/app/core/pattern_orchestrator.py"
FLIPPED = "checklist['score'] >= 0"


def checkout(dest: Path, *, simpleeval: bool = False, authz: bool = False) -> Path:
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if simpleeval:
        convert(dest)
    if authz:
        add_authorization(dest)
    return dest


def audit_counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return dict(conn.execute("SELECT action, count(*) FROM audit_log"
                                 " WHERE action LIKE 'pattern.%' GROUP BY action").fetchall())


# -- escape corpus ---------------------------------------------------------------------------

def test_every_corpus_class_is_rejected_by_new_evaluator_and_escapes_the_old(tmp_path):
    payloads = load_corpus()
    new = run_corpus(checkout(tmp_path / "new", simpleeval=True), payloads)
    by_class = defaultdict(list)
    for o in new:
        by_class[o.payload.kind].append(o)
    assert {"dunder-walk", "attribute-chain", "side-effect", "state-mutation", "import",
            "resource-bomb", "format-string", "lambda-and-call", "generator-frame", "statement"} <= set(by_class)
    for kind, outcomes in by_class.items():
        assert [o.payload.expression for o in outcomes if not o.rejected] == [], kind
    assert {o.evaluator for o in new} == {"evaluate_condition"}

    # the same corpus against the eval() it replaces: it is a real attack corpus
    old = {o.payload.expression: o for o in run_corpus(checkout(tmp_path / "old"), payloads)}
    assert {o.evaluator for o in old.values()} - {""} == {"eval"}   # "" = killed by a limit
    escaped = {o.payload.kind for o in old.values() if o.verdict in ("evaluated", "side-effect")}
    assert {"dunder-walk", "attribute-chain", "side-effect", "state-mutation", "format-string",
            "lambda-and-call", "generator-frame"} <= escaped
    writes = [o for o in old.values() if o.payload.kind == "side-effect" and o.verdict == "side-effect"]
    assert writes and all("pwned.txt" in o.detail for o in writes)
    assert old["inputs.clear()"].detail == "changed the step state"
    assert old["9**9**9"].verdict == "exhausted"


@pytest.mark.gate_fails("code:no-eval")
def test_evaluator_cli_names_the_payload_that_evaluates(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("# two payloads\n__import__('os')\n().__class__.__base__.__subclasses__()\n")
    runner = CliRunner()
    old = runner.invoke(app, ["gate", "evaluator", "--repo", str(checkout(tmp_path / "old")),
                              "--corpus", str(corpus)])
    assert old.exit_code == 1, old.output
    assert "line 3: ().__class__.__base__.__subclasses__()" in old.output
    assert "line 2" not in old.output                   # rejected even by eval without builtins
    new = runner.invoke(app, ["gate", "evaluator", "--repo", str(checkout(tmp_path / "new", simpleeval=True)),
                              "--corpus", str(corpus)])
    assert new.exit_code == 0 and "2/2 payloads rejected" in new.output
    # the no-eval gate names the file and line on the old code only
    noeval = runner.invoke(app, ["gate", "no-eval", "--repo", str(tmp_path / "old")])
    assert noeval.exit_code == 1 and f"{ORCH}:114: eval" in noeval.output
    assert find_eval_calls(tmp_path / "new") == []


# -- differential ----------------------------------------------------------------------------

@pytest.mark.gate_fails("security:evaluator-differential")
def test_differential_gate_catches_an_evaluator_that_disagrees_on_one_condition(target, tmp_path):
    old = checkout(tmp_path / "old")
    samples = tmp_path / "states.pkl"
    report = capture_states(old, target.staging_url, sample_inputs(target.staging_url), samples)
    assert report["captured"] >= 13 and report["errors"] == {}
    good = differential_gate(old, checkout(tmp_path / "new", simpleeval=True), samples)
    assert good.passed, good.sample
    assert good.details["conditions"] == 16 and good.details["states"] == report["samples"]
    # both sides of most conditions were exercised (the zeroed states flip the comparisons)
    assert sum(1 for c in good.details["old_decisions"].values() if c["true"] and c["false"]) >= 10

    bad = checkout(tmp_path / "bad", simpleeval=True)
    orch = bad / ORCH
    text = orch.read_text()
    good_line = "    return ConditionEvaluator(names).eval(expression)\n"
    assert good_line in text
    orch.write_text(text.replace(good_line, "    value = ConditionEvaluator(names).eval(expression)\n"
                                            f"    return (not value) if expression == {FLIPPED!r} else value\n"))
    result = differential_gate(old, bad, samples)
    assert not result.passed
    assert [(d["pattern"], d["condition"]) for d in result.sample] == [("buffett_checklist", FLIPPED)]


# -- authorization through the real API --------------------------------------------------------

SECRET = "day5-test-signing-secret-of-32-bytes-or-more"
AUTH = "backend/app/auth/dependencies.py"
MAIN = "backend/app/main.py"


def serve(code: Path, url: str, log: Path) -> ApiServer:
    server = ApiServer(code, url, jwt_secret=SECRET, log_path=log)
    server.start()
    return server


def failures(result) -> set[tuple[str, str]]:
    return {(p["route"], p["caller"]) for p in result.sample}


def test_authorization_gate_probes_every_route_and_passes_on_the_codemod(target, tmp_path):
    code = checkout(tmp_path / "authz", simpleeval=True, authz=True)
    server = serve(code, target.staging_url, tmp_path / "api.log")
    try:
        before = audit_counts(target.staging_url)
        result = authorization_gate(server.base_url, target.staging_url, code, SECRET)
        assert result.passed, result.sample
        by_route = defaultdict(dict)
        for r in result.details["requests"]:
            by_route[r["route"]][r["caller"]] = r["status"]
        # every route of the running service, reads and writes, taken from its OpenAPI
        assert set(by_route) == {
            "GET /api/patterns", "POST /api/patterns/{pattern_id}/execute",
            "GET /api/portfolios/{portfolio_id}/holdings",
            "GET /api/portfolios/{portfolio_id}/securities/{security_id}/lots",
            "POST /api/portfolios/{portfolio_id}/sell"}
        assert by_route["POST /api/portfolios/{portfolio_id}/sell"] == {
            "no token": 401, "forged token (another secret)": 401, "expired token": 401,
            "verified token, role without rights": 403, "verified token, role admin": 200}   # a real sale
        assert by_route["GET /api/portfolios/{portfolio_id}/holdings"]["verified token, role admin"] == 200
        after = audit_counts(target.staging_url)
        assert after["pattern.execute"] == before.get("pattern.execute", 0) + 1     # the admitted run only
        assert after["pattern.denied"] == before.get("pattern.denied", 0) + 1       # the rightless token
    finally:
        server.stop()


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert text.count(old) == count, (path, old)
    path.write_text(text.replace(old, new))


def _trust_header(code: Path) -> None:
    """A backend that believes rights the client claims in a header."""
    claimed = 'request.headers.get("X-DawsOS-Rights", "")'
    _edit(code / AUTH, "        if right not in user.rights:\n",
          f"        if right not in user.rights and right not in {claimed}:\n")
    # the API's check and the rights given to run_pattern
    _edit(code / MAIN, "user.rights", f'{claimed}.split(",")', count=2)


def _skip_signature_check(code: Path) -> None:
    _edit(code / AUTH, 'options={"require": ["exp", "sub"]}', 'options={"verify_signature": False}')


def _no_routes(code: Path) -> None:
    _edit(code / MAIN, 'FastAPI(title="DawsOS", version="0.9.0", lifespan=lifespan)',
          'FastAPI(title="DawsOS", lifespan=lifespan, openapi_url=None)')


@pytest.mark.gate_fails("security:authorization")
@pytest.mark.parametrize("variant, authz, expected", [
    # before the codemod: authenticated, but any role may do anything, pattern rights from the header
    ("template", False, {("GET /api/portfolios/{portfolio_id}/holdings", "verified token, role without rights"),
                         ("POST /api/portfolios/{portfolio_id}/sell", "verified token, role without rights"),
                         ("POST /api/portfolios/{portfolio_id}/sell", "refused callers"),
                         ("POST /api/patterns/{pattern_id}/execute", "verified token, role without rights"),
                         ("POST /api/patterns/{pattern_id}/execute", "verified token, role admin")}),
    ("trusts a client-set rights header", True, {
        ("GET /api/portfolios/{portfolio_id}/holdings", "verified token, role without rights"),
        ("POST /api/portfolios/{portfolio_id}/sell", "verified token, role without rights"),
        ("POST /api/portfolios/{portfolio_id}/sell", "refused callers"),
        ("POST /api/patterns/{pattern_id}/execute", "verified token, role without rights"),
        ("POST /api/patterns/{pattern_id}/execute", "refused callers")}),
    ("accepts forged tokens", True, None),
    ("lists no routes", True, {("-", "-")}),
])
def test_authorization_gate_fails(target, tmp_path, variant, authz, expected):
    code = checkout(tmp_path / "code", simpleeval=True, authz=authz)
    {"trusts a client-set rights header": _trust_header, "accepts forged tokens": _skip_signature_check,
     "lists no routes": _no_routes}.get(variant, lambda _c: None)(code)
    server = serve(code, target.staging_url, tmp_path / "api.log")
    try:
        result = authorization_gate(server.base_url, target.staging_url, code, SECRET)
    finally:
        server.stop()
    assert not result.passed
    got = failures(result)
    if expected is None:       # forged and expired tokens get through on every route
        assert {c for _r, c in got} >= {"forged token (another secret)", "expired token"}
        assert len({r for r, _c in got}) == 5
    else:
        assert expected <= got, got
    if variant != "lists no routes":
        sold = [p for p in result.sample if p["caller"] == "refused callers" and "sell" in p["route"]]
        assert sold and all("a refused request wrote" in p["problem"] for p in sold)


def test_authorization_codemod_on_the_real_run_pattern_signature(tmp_path):
    """The real DawsOS: run_pattern(self, pattern_id, ctx: RequestCtx, inputs); rights and the
    user come from the request context."""
    pkg = tmp_path / "real" / "app"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "database.py").write_text("def get_pool():\n    raise RuntimeError('no database here')\n")
    (pkg / "core" / "pattern_orchestrator.py").write_text(REAL_SHAPED_ORCHESTRATOR)
    out = rewrite_orchestrator(REAL_SHAPED_ORCHESTRATOR, "app/core/pattern_orchestrator.py")
    assert "await self.authorize(pattern_id, getattr(ctx, \"rights\", None), str(ctx.user_id))" in out
    assert rewrite_orchestrator(out) == out                                   # idempotent
    (pkg / "core" / "pattern_orchestrator.py").write_text(out)
    probe = (
        "import asyncio, dataclasses\n"
        "from app.core.pattern_orchestrator import PatternForbidden, PatternOrchestrator\n"
        "@dataclasses.dataclass(frozen=True)\n"
        "class Ctx:\n    user_id: str\n    trace_id: str = 't'\n    rights: tuple = ()\n"
        "o = PatternOrchestrator()\n"
        "try:\n    asyncio.run(o.run_pattern('portfolio_overview', Ctx('u1'), {}))\n    print('ran')\n"
        "except PatternForbidden:\n    print('forbidden')\n"
        "print(asyncio.run(o.run_pattern('portfolio_overview', Ctx('u2', rights=('patterns:execute',)), {}))['ok'])\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "real", capture_output=True,
                          text=True, check=False)
    assert proc.stdout.split() == ["forbidden", "True"], proc.stderr[-2000:]


REAL_SHAPED_ORCHESTRATOR = '''"""Pattern orchestrator shaped as the real DawsOS one (a request context per run)."""
import logging
from typing import Any, Dict

log = logging.getLogger(__name__)


class PatternOrchestrator:
    def __init__(self):
        self.patterns = {"portfolio_overview": {"steps": []}}

    def get_pattern(self, pattern_id: str) -> dict:
        return self.patterns[pattern_id]

    async def run_pattern(self, pattern_id: str, ctx, inputs: Dict[str, Any]) -> Dict[str, Any]:
        """Run a pattern for the request context ctx."""
        spec = self.get_pattern(pattern_id)
        return {"ok": True, "steps": len(spec["steps"]), "trace_id": ctx.trace_id}
'''


# -- the flow ----------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_server")
def test_flow_on_staging_completes(target, slack_standin):
    dry = security_fixes(environment="staging", dry_run=True)       # previews, changes nothing
    assert dry.status == "dry-run" and dry.applied == []
    assert "eval(safe_condition" in (target.deploy["staging"] / ORCH).read_text()
    out = security_fixes(environment="staging")
    assert out.status == "completed"
    assert {"code:simpleeval", "gate:no-eval", "gate:evaluator-differential", "gate:escape-corpus",
            "code:authorization", "gate:authorization", "smoke"} <= set(out.applied)
    deploy = target.deploy["staging"]
    assert find_eval_calls(deploy) == []
    orch = (deploy / ORCH).read_text()
    assert "evaluate_condition(safe_condition, state)" in orch and "await self.authorize(" in orch
    assert "simpleeval>=1.0" in (deploy / "backend/requirements.txt").read_text()
    log = git_ops.git(target.repo, "log", "--format=%s", "runbook/staging")
    assert "replace eval()" in log and "check the caller's rights" in log
    counts = audit_counts(target.staging_url)
    assert counts["pattern.execute"] >= 14 and counts["pattern.denied"] >= 1   # smoke + gate probes
    assert git_ops.head(target.repo) == git_ops.git(target.repo, "rev-parse", "main")  # source untouched
    assert slack_standin.requests == []


@pytest.mark.usefixtures("prefect_server")
def test_failing_gate_reverts_the_code_and_alerts(target, slack_standin):
    # a pattern condition the safe evaluator refuses (`**`) decides differently after the change
    pattern = target.repo / "backend/patterns/corporate_actions_upcoming.json"
    text = pattern.read_text()
    cond = '"{{valued_positions.position_count}} > 0"'
    assert cond in text
    pattern.write_text(text.replace(cond, '"{{valued_positions.position_count}} ** 1 > 0"', 1))
    git_ops.commit_all(target.repo, "test: a condition with **")
    head_before = git_ops.head(target.repo)

    state: State = security_fixes(environment="staging", return_state=True)
    assert state.is_failed()
    with pytest.raises(GateFailed, match="evaluator-differential"):
        state.result()
    deploy = target.deploy["staging"]
    assert git_ops.head(deploy) == head_before                          # old code deployed again
    assert "eval(safe_condition" in (deploy / ORCH).read_text()
    assert "simpleeval" not in (deploy / "backend/requirements.txt").read_text()
    bodies = slack_standin.bodies()
    assert "evaluator-differential" in bodies and "Rolled back" in bodies and "code:simpleeval" in bodies
