"""Week 1 Days 3-5 (pattern system preparation): each gate against the real demo API on real
PostgreSQL, passing on the changed code and FAILING on a broken one; the flow end to end on
staging after Week 0 Day 1-2 (ticked in the standup); a failing gate that reverts the flow's
commits and restarts the API on the code it found."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from prefect.states import State

from runbook.demo.workspace import TEMPLATE, init_repo
from runbook.errors import GateFailed
from runbook.expectations.patterns import (
    input_models_gate,
    panel_datapath_gate,
    panel_parity_gate,
    pattern_json_gate,
    pattern_names_gate,
)
from runbook.expectations.smoke import sample_inputs
from runbook.flows.week0.day1_2 import standardize_fields
from runbook.flows.week1.day3_5 import pattern_system
from runbook.tasks.code import git_ops
from runbook.tasks.code.authorization import add_authorization
from runbook.tasks.code.frontend_panels import read_panels_from_backend
from runbook.tasks.code.frontend_registry import find_registry
from runbook.tasks.code.input_schemas import add_input_schemas
from runbook.tasks.code.panels import move_panels
from runbook.tasks.target.api_server import ApiServer
from runbook.tasks.target.auth_tokens import bearer, mint

PATTERNS = "backend/patterns"
MODELS = "backend/app/core/pattern_inputs.py"
SECRET = "week1-test-signing-secret-of-32-bytes-or-more"
HEADERS = bearer(mint(SECRET, "runbook", "admin", ttl_s=3600))


def caller(user: str) -> dict:
    """The headers of an operator whose verified user is `user` (the gate's audit marker)."""
    return bearer(mint(SECRET, user, "admin"))


def checkout(dest: Path, *steps) -> Path:
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for step in steps:
        step(dest)
    return dest


def edit_json(path: Path, change) -> None:
    spec = json.loads(path.read_text())
    change(spec)
    path.write_text(json.dumps(spec, indent=2) + "\n")


def panel(spec: dict, panel_id: str) -> dict:
    return next(p for p in spec["display"]["panels"] if p["id"] == panel_id)


@pytest.fixture
def serve(target, tmp_path):
    servers = []

    def start(code: Path) -> str:
        server = ApiServer(code, target.staging_url, jwt_secret=SECRET,
                           log_path=tmp_path / f"api-{len(servers)}.log")
        servers.append(server)
        return server.start()
    yield start
    for s in servers:
        s.stop()


def problems(result) -> list[str]:
    return [f"{r.get('pattern')}/{r.get('panel', r.get('case', r.get('where')))}: {r['problem']}"
            for r in result.sample]


# -- panels and their dataPaths ------------------------------------------------------------------

@pytest.mark.gate_fails("panel-datapaths")
@pytest.mark.gate_fails("pattern-json")
def test_panel_gates_pass_after_the_move_and_fail_on_a_path_or_column_that_resolves_to_nothing(
        target, serve, tmp_path):
    code = checkout(tmp_path / "code")
    base = serve(code)
    before = panel_datapath_gate(base, code, target.staging_url, HEADERS)     # backend panels lack dataPath
    assert not before.passed and "portfolio_overview/holdings: panel holdings: no dataPath" in problems(before)
    assert not pattern_json_gate(code).passed

    move_panels(code)
    good = panel_datapath_gate(base, code, target.staging_url, HEADERS)
    assert good.passed, good.sample
    assert pattern_json_gate(code).passed

    overview = code / PATTERNS / "portfolio_overview.json"
    edit_json(overview, lambda s: panel(s, "twr").update(dataPath="perf_metrics.twr_after_week0"))
    edit_json(overview, lambda s: panel(s, "holdings")["config"]["columns"].append(
        {"field": "qty_closed", "header": "Closed"}))
    bad = panel_datapath_gate(base, code, target.staging_url, HEADERS)
    assert not bad.passed
    assert problems(bad) == [
        "portfolio_overview/holdings: panel holdings: rows of valued_positions.positions lack column field qty_closed",
        "portfolio_overview/twr: panel twr: perf_metrics.twr_after_week0 resolves to nothing"]
    edit_json(overview, lambda s: panel(s, "twr").pop("dataPath"))
    assert "portfolio_overview/twr: no dataPath" in problems(pattern_json_gate(code))


@pytest.mark.gate_fails("pattern-names")
def test_pattern_names_gate_fails_while_patterns_use_old_names(tmp_path):
    code = tmp_path / "code"
    init_repo(TEMPLATE, code)                  # the gate reads what git tracks
    result = pattern_names_gate(code)
    assert not result.passed
    assert {r["file"] for r in result.sample} >= {"frontend/full_ui.html", f"{PATTERNS}/portfolio_overview.json"}


# -- input models ---------------------------------------------------------------------------------

@pytest.mark.gate_fails("input-models")
def test_input_models_gate_passes_and_fails_on_a_model_that_accepts_a_bad_uuid(target, serve, tmp_path):
    code = checkout(tmp_path / "code", add_authorization, add_input_schemas)
    good = input_models_gate(serve(code), code, target.staging_url, caller)
    assert good.passed, good.sample
    assert int(good.observed.split(" in ")[1].split()[0]) >= 13 * 3      # cases probed

    bad_model = checkout(tmp_path / "bad", add_authorization, add_input_schemas)
    models = bad_model / MODELS
    text = models.read_text()
    old = 'class PortfolioOverviewInputs(PatternInputs):\n    """Inputs of pattern portfolio_overview."""\n    portfolio_id: UUID\n'
    assert old in text
    models.write_text(text.replace(old, old.replace("portfolio_id: UUID", "portfolio_id: str")))
    bad = input_models_gate(serve(bad_model), bad_model, target.staging_url, caller)
    assert not bad.passed
    flagged = [(s["pattern"], s["case"]) for s in bad.sample]
    assert ("portfolio_overview", "malformed UUID portfolio_id") in flagged
    assert ("portfolio_overview", "refused requests") in flagged            # and it ran: audit rows
    assert {p for p, _ in flagged} == {"portfolio_overview"}


@pytest.mark.gate_fails("input-models")
def test_input_models_refuse_with_the_documented_shape_and_fail_closed_without_an_audit(
        target, serve, tmp_path):
    code = checkout(tmp_path / "code", add_authorization, add_input_schemas)
    base = serve(code)
    inputs = sample_inputs(target.staging_url)
    r = httpx.post(f"{base}/api/patterns/holding_deep_dive/execute", headers=HEADERS, timeout=30,
                   json={"inputs": {"portfolio_id": "nope", "symbol": inputs["symbol"], "extra": 1}})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["error"] == "invalid_inputs" and detail["pattern_id"] == "holding_deep_dive"
    assert sorted(e["field"] for e in detail["errors"]) == ["extra", "portfolio_id", "security_id"]
    assert all(set(e) == {"field", "type", "message"} for e in detail["errors"])
    # without an audit of runs (no Day 5 authorization), "nothing ran" cannot be proven: fails
    blind = checkout(tmp_path / "blind", add_input_schemas)
    result = input_models_gate(serve(blind), blind, target.staging_url, caller)
    assert not result.passed
    assert "a valid run left no audit row" in result.sample[0]["problem"]


# -- parity ---------------------------------------------------------------------------------------

@pytest.mark.gate_fails("panel-parity")
def test_panel_parity_gate_passes_when_the_frontend_reads_the_response_and_fails_otherwise(
        target, serve, tmp_path):
    moved_only = checkout(tmp_path / "moved", move_panels)
    half = panel_parity_gate(serve(moved_only), moved_only, target.staging_url, HEADERS)
    assert not half.passed
    found = problems(half)
    assert "portfolio_overview/response: no display.panels in the response" in found
    assert "portfolio_overview/frontend/full_ui.html: registry entry still defines panels" in found
    assert any("frontend reads panels from the registry" in p for p in found)

    done = checkout(tmp_path / "done", move_panels, read_panels_from_backend)
    base = serve(done)
    good = panel_parity_gate(base, done, target.staging_url, HEADERS)
    assert good.passed, good.sample
    registry = find_registry(done)
    assert registry.with_panels() == [] and registry.entries["portfolio_overview"].value["icon"] == "📊"
    # the pattern JSON changed after the API loaded it: what is served differs from the file
    edit_json(done / PATTERNS / "buffett_checklist.json", lambda s: s["display"]["panels"].pop())
    drift = panel_parity_gate(base, done, target.staging_url, HEADERS)
    assert not drift.passed and [s["pattern"] for s in drift.sample] == ["buffett_checklist"]


# -- the flow -------------------------------------------------------------------------------------

@pytest.mark.usefixtures("prefect_server")
def test_flow_on_staging_after_week0_is_green_and_ticks_the_standup(target, slack_standin):
    add_authorization(target.repo)                      # what Week 0 Day 5 leaves (audited runs)
    git_ops.commit_all(target.repo, "test: Week 0 Day 5 authorization")
    assert standardize_fields(environment="staging").status == "completed"
    dry = pattern_system(environment="staging", dry_run=True)
    assert dry.status == "dry-run" and dry.applied == []
    deploy = target.deploy["staging"]
    assert find_registry(deploy).with_panels()                       # a dry run changes nothing

    out = pattern_system(environment="staging")
    assert out.status == "completed"
    assert ["code:panels", "gate:pattern-json", "gate:panel-datapaths", "code:input-schemas",
            "gate:input-models", "code:frontend-panels", "gate:panel-parity", "gate:pattern-names",
            "smoke"] == [s for s in out.applied if s.startswith(("code:", "gate:", "smoke"))
                         and s != "smoke:baseline"]
    spec = json.loads((deploy / PATTERNS / "portfolio_overview.json").read_text())
    assert panel(spec, "holdings")["dataPath"] == "valued_positions.positions"
    assert {"field": "quantity_open", "header": "Open Qty"} in panel(spec, "holdings")["config"]["columns"]
    assert find_registry(deploy).with_panels() == [] and (deploy / MODELS).exists()
    log = git_ops.git(target.repo, "log", "--format=%s", "runbook/staging")
    assert "panel definitions" in log and "Pydantic input models" in log and "renders panels from the response" in log
    assert slack_standin.requests == []

    from runbook.flows.standup import collect
    ticked = collect(None, since_last=False).ticked()
    assert {t for k, t in ticked if k == "week1-day3-5"} == {
        "Pattern JSON files updated with standardized field names", "Panel definitions in backend JSON",
        "Pydantic schemas created", "Pattern responses include panel metadata",
        "Pattern execution works correctly"}


@pytest.mark.usefixtures("prefect_server")
def test_failing_gate_reverts_the_commits_and_restarts_the_api(target, slack_standin):
    """Week 1 on code that Week 0 Day 1-2 has not renamed: every code update applies and its
    gates pass, then the pattern-names gate fails: all three commits are reverted and the API
    runs the code the run found."""
    add_authorization(target.repo)
    git_ops.commit_all(target.repo, "test: Week 0 Day 5 authorization")
    head_before = git_ops.head(target.repo)

    state: State = pattern_system(environment="staging", return_state=True)
    assert state.is_failed()
    with pytest.raises(GateFailed, match="pattern-names"):
        state.result()
    deploy = target.deploy["staging"]
    assert git_ops.head(deploy) == head_before                          # old code deployed again
    assert git_ops.git(deploy, "status", "--porcelain") == ""
    spec = json.loads((deploy / PATTERNS / "portfolio_overview.json").read_text())
    assert not [p for p in spec["display"]["panels"] if "dataPath" in p]
    assert find_registry(deploy).with_panels() and not (deploy / MODELS).exists()
    log = git_ops.git(target.repo, "log", "--format=%s", "runbook/staging")
    assert log.count("Revert ") == 3
    bodies = slack_standin.bodies()
    assert "pattern-names" in bodies and "Rolled back" in bodies
    assert all(step in bodies for step in ("code:panels", "code:input-schemas", "code:frontend-panels"))
    assert "backend/patterns/" in bodies                              # the files that still hold old names
