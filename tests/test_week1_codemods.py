"""Week 1 codemods on files: the panels move (demo, the real frontend's layout in an HTML
<script>, a JSON registry, a TypeScript registry), minimal JSON edits, idempotence, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runbook.cli.app import app
from runbook.demo.workspace import TEMPLATE
from runbook.errors import RunbookError
from runbook.tasks.code.frontend_registry import find_registry
from runbook.tasks.code.panels import move_panels

PATTERNS = "backend/patterns"


def demo_copy(dest: Path) -> Path:
    shutil.copytree(TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def removed_lines(diff: str) -> list[str]:
    return [ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]


def added_lines(diff: str) -> list[str]:
    return [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]


# -- the real frontend's layout, written small ---------------------------------------------------

REAL_LIKE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><script src="react.js"></script>
<script type="application/ld+json">{"@context": "https://schema.org"}</script></head>
<body><div id="root"></div>
<script>
    const e = React.createElement;
    // the registry: unquoted keys, single quotes, comments, a trailing comma
    const patternRegistry = {
        overview: {
            name: 'Overview', icon: '📊', category: 'portfolio',
            display: {
                panels: [
                    { id: 'nav_chart', title: 'Value Over Time', type: 'line_chart', dataPath: 'historical_nav' },
                    {
                        id: 'holdings_table', title: 'Holdings', type: 'table',
                        dataPath: 'valued_positions.positions',
                        config: { columns: [ { field: 'symbol', header: 'Symbol' },
                                             { field: 'qty', header: "Shares (it's open)" } ], maxRows: 50 },
                    },
                    { id: 'strip', title: 'Metrics', type: 'metrics_grid', dataPath: 'perf',
                      config: { metrics: [ { key: 'twr', label: 'TWR' } ] } }, // frontend only
                ]
            }
        },
        other: { name: 'Other', display: { panels: [ { id: 'a', title: 'A', type: 'table', dataPath: 'x.items' } ] } },
    };
    async function load(pattern) {
        const result = await apiClient.executePattern(pattern, {});
        const metadata = patternRegistry[pattern];
        setPanels(metadata.display.panels || []);
        return result?.data ?? null;
    }
</script>
</body></html>
"""

OVERVIEW_JSON = """{
  "id": "overview",
  "tags": ["a", "b"],
  "inputs": {"portfolio_id": {"type": "uuid", "required": true}},
  "outputs": ["historical_nav", "valued_positions", "perf"],
  "display": {
    "panels": [
      {
        "id": "historical_nav",
        "title": "Value Over Time",
        "type": "line_chart",
        "refresh_ttl": 300
      },
      {
        "id": "holdings",
        "title": "Holdings",
        "type": "table",
        "config": {"maxRows": 25}
      },
      {
        "id": "allocation",
        "title": "Asset Allocation",
        "type": "pie_chart"
      }
    ]
  },
  "steps": []
}
"""

OTHER_JSON = '{\n    "id": "other",\n    "inputs": {},\n    "steps": []\n}\n'


def real_like(dest: Path, registry: tuple[str, str] | None = None) -> Path:
    (dest / PATTERNS).mkdir(parents=True)
    (dest / PATTERNS / "overview.json").write_text(OVERVIEW_JSON)
    (dest / PATTERNS / "other.json").write_text(OTHER_JSON)
    name, text = registry or ("full_ui.html", REAL_LIKE_HTML)
    (dest / name).parent.mkdir(parents=True, exist_ok=True)
    (dest / name).write_text(text)
    return dest


def test_panels_on_the_real_frontends_layout(tmp_path):
    repo = real_like(tmp_path / "real")
    before = snapshot(repo)
    report = move_panels(repo)
    assert report.registry == "full_ui.html"
    assert report.by_title == [
        "overview: backend historical_nav <- frontend nav_chart (title 'Value Over Time', type line_chart)",
        "overview: backend holdings <- frontend holdings_table (title 'Holdings', type table)"]
    assert report.added == ["overview/strip", "other/a"]
    assert report.backend_only == [("overview/allocation: kept WITHOUT dataPath (no frontend panel or "
                                    "pattern output matches; give it one)")]
    assert report.conflicts == ["overview/holdings.config.maxRows: backend 25 kept, frontend has 50"]
    spec = json.loads((repo / PATTERNS / "overview.json").read_text())
    panels = {p["id"]: p for p in spec["display"]["panels"]}
    assert list(panels) == ["historical_nav", "holdings", "allocation", "strip"]
    assert panels["historical_nav"]["dataPath"] == "historical_nav" and panels["historical_nav"]["refresh_ttl"] == 300
    assert panels["holdings"]["config"] == {"maxRows": 25, "columns": [
        {"field": "symbol", "header": "Symbol"}, {"field": "qty", "header": "Shares (it's open)"}]}
    assert "dataPath" not in panels["allocation"]
    assert panels["strip"]["config"]["metrics"] == [{"key": "twr", "label": "TWR"}]
    other = json.loads((repo / PATTERNS / "other.json").read_text())
    assert other["display"] == {"panels": [{"id": "a", "title": "A", "type": "table", "dataPath": "x.items"}]}
    # minimal edits: a line changes only to take a comma or, written inline, to take the new
    # member inline; additions follow the file's own indentation (4 spaces in other.json)
    diff = report.diff()
    assert removed_lines(diff) == ['        "refresh_ttl": 300', '        "config": {"maxRows": 25}',
                                   '    "steps": []']
    assert '        "config": {"maxRows": 25, "columns": [{"field": "symbol", "header": "Symbol"}, ' \
           '{"field": "qty", "header": "Shares (it\'s open)"}]},' in added_lines(diff)
    assert '  "tags": ["a", "b"],' in (repo / PATTERNS / "overview.json").read_text()
    assert '\n    "display": {\n        "panels": [\n' in (repo / PATTERNS / "other.json").read_text()
    # the frontend is not touched by this codemod; a second run changes nothing
    after = snapshot(repo)
    assert after["full_ui.html"] == before["full_ui.html"]
    again = move_panels(repo)
    assert again.files == {} and snapshot(repo) == after
    assert again.conflicts == report.conflicts          # still listed, still not overwritten


@pytest.mark.parametrize("name,text", [
    ("frontend/src/patternRegistry.json", json.dumps({
        "overview": {"panels": [{"id": "nav_chart", "title": "Value Over Time", "type": "line_chart",
                                 "dataPath": "historical_nav"}]}}, indent=2)),
    ("frontend/src/registry.ts",
     ("type Panel = { id: string; dataPath?: string };\n"
     "export const patternRegistry: Record<string, { display: { panels: Panel[] } }> = {\n"
     "  overview: { display: { panels: [ { id: 'nav_chart', title: 'Value Over Time', "
     "type: 'line_chart', dataPath: 'historical_nav' } as Panel ] } },\n};\n")),
])
def test_panels_from_a_json_or_typescript_registry(tmp_path, name, text):
    if name.endswith(".ts"):
        text = text.replace(" as Panel ", " ")     # an `as` cast is code, not data
    repo = real_like(tmp_path / "r", (name, text))
    report = move_panels(repo)
    assert report.registry == name and report.by_title[0].startswith("overview: backend historical_nav")
    spec = json.loads((repo / PATTERNS / "overview.json").read_text())
    assert spec["display"]["panels"][0]["dataPath"] == "historical_nav"


def test_panels_on_the_demo(tmp_path):
    repo = demo_copy(tmp_path / "demo")
    frontend = {pid: e.panels for pid, e in find_registry(repo).entries.items()}
    report = move_panels(repo)
    assert len(report.files) == 13 and report.unmatched_patterns == []
    assert "portfolio_overview: backend holdings <- frontend positions (title 'Positions', type data_table)" \
        in report.by_title
    assert "holding_deep_dive: backend tax_lots <- frontend lots (title 'Tax Lots', type data_table)" \
        in report.by_title
    assert report.backend_only == [("portfolio_overview/perf_metrics: kept, dataPath 'perf_metrics' "
                                    "(the pattern output of the same name)")]
    # nothing lost: every frontend panel's dataPath is now on a backend panel of its pattern
    for pid, panels in frontend.items():
        spec = json.loads((repo / PATTERNS / f"{pid}.json").read_text())
        backend = spec["display"]["panels"]
        assert all(p.get("dataPath") for p in backend), pid
        assert {p["dataPath"] for p in panels} <= {p["dataPath"] for p in backend}, pid
    assert '"outputs": ["valued_positions", "perf_metrics", "sector_allocation", "history_chart"]' \
        in (repo / PATTERNS / "portfolio_overview.json").read_text()


def test_panels_cli_lists_the_reconciliation_and_dry_run_changes_nothing(tmp_path):
    repo = real_like(tmp_path / "real")
    before = snapshot(repo)
    out = CliRunner().invoke(app, ["codemod", "panels", "--repo", str(repo), "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "backend holdings <- frontend holdings_table" in out.output
    assert "overview/allocation: kept WITHOUT dataPath" in out.output
    assert "config.maxRows: backend 25 kept" in out.output and '+        "dataPath": "historical_nav"' in out.output
    assert snapshot(repo) == before


def test_bad_input_is_one_clear_error_and_changes_nothing(tmp_path):
    broken = REAL_LIKE_HTML.replace("title: 'Holdings',", "title: 'Holdings'")
    repo = real_like(tmp_path / "broken", ("full_ui.html", broken))
    before = snapshot(repo)
    with pytest.raises(RunbookError, match=r"full_ui.html:\d+: JavaScript does not parse"):
        move_panels(repo)
    code = REAL_LIKE_HTML.replace("dataPath: 'perf',", "dataPath: pathFor('perf'),")
    repo2 = real_like(tmp_path / "code", ("full_ui.html", code))
    with pytest.raises(RunbookError, match=r"full_ui.html:\d+: call expression `pathFor\('perf'\)`"):
        move_panels(repo2)
    (repo / PATTERNS / "other.json").write_text('{"id": "other",}')
    (repo / "full_ui.html").write_text(REAL_LIKE_HTML)
    with pytest.raises(RunbookError, match="other.json: malformed JSON"):
        move_panels(repo)
    assert snapshot(repo)["backend/patterns/overview.json"] == before["backend/patterns/overview.json"]
    with pytest.raises(RunbookError, match="no frontend pattern registry"):
        move_panels(tmp_path / "nowhere")


# -- input-schemas --------------------------------------------------------------------------------

REAL_LIKE_ORCHESTRATOR = '''"""Orchestrator with a request context, as the real backend has it."""
from app.core.types import RequestCtx


class PatternOrchestrator:
    async def run_pattern(self, pattern_id: str, ctx: RequestCtx, inputs: dict) -> dict:
        """Run a pattern."""
        spec = self.patterns.get(pattern_id)
        if not spec:
            raise ValueError(f"Pattern not found: {pattern_id}")
        inputs = self._apply_defaults(spec, inputs)
        return {"data": {}, "trace": {}}
'''


def load_models(repo: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("generated_inputs", repo / "backend/app/core/pattern_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_input_schemas_generate_one_model_per_pattern_and_validate_first(tmp_path):
    from runbook.tasks.code.input_schemas import add_input_schemas

    repo = demo_copy(tmp_path / "demo")
    dry = add_input_schemas(repo, dry_run=True)
    assert not (repo / "backend/app/core/pattern_inputs.py").exists() and len(dry.models) == 13
    report = add_input_schemas(repo)
    assert sorted(report.files) == ["backend/app/core/pattern_inputs.py",
                                    "backend/app/core/pattern_orchestrator.py", "backend/requirements.txt"]
    orch = (repo / "backend/app/core/pattern_orchestrator.py").read_text()
    assert "spec = self.get_pattern(pattern_id)\n        inputs = validate_pattern_inputs(pattern_id, inputs)\n" in orch
    models = load_models(repo)
    assert sorted(models.INPUT_MODELS) == sorted(p.stem for p in (repo / PATTERNS).glob("*.json"))
    check = models.validate_pattern_inputs
    pid = "00000000-0000-4000-8000-000000000001"
    assert check("portfolio_overview", {"portfolio_id": pid}) == {"portfolio_id": pid}
    assert check("portfolio_overview", {"portfolio_id": pid, "as_of_date": "latest"})["as_of_date"] == "latest"
    assert check("corporate_actions_upcoming", {"portfolio_id": pid, "days_ahead": 30})["days_ahead"] == 30
    for bad, field in (({}, "portfolio_id"), ({"portfolio_id": "x-1"}, "portfolio_id"),
                       ({"portfolio_id": pid, "as_of_date": "soon"}, "as_of_date"),
                       ({"portfolio_id": pid, "nope": 1}, "nope")):
        with pytest.raises(models.PatternInputError) as err:
            check("portfolio_overview", bad)
        assert err.value.status_code == 422
        assert {e["field"] for e in err.value.detail["errors"]} == {field}, bad
    with pytest.raises(models.PatternInputError):
        check("no_such_pattern", {})
    assert add_input_schemas(repo).files == {}                  # idempotent


def test_input_schemas_on_the_real_orchestrators_signature(tmp_path):
    from runbook.tasks.code.input_schemas import add_input_schemas

    repo = real_like(tmp_path / "real")
    orch = repo / "backend/app/core/pattern_orchestrator.py"
    orch.parent.mkdir(parents=True)
    orch.write_text(REAL_LIKE_ORCHESTRATOR)
    report = add_input_schemas(repo)
    assert report.hook == "run_pattern, statement 4"            # after the lookup and its not-found check
    text = orch.read_text()
    assert ('raise ValueError(f"Pattern not found: {pattern_id}")\n'
            '        inputs = validate_pattern_inputs(pattern_id, inputs)\n') in text
    assert "from app.core.pattern_inputs import validate_pattern_inputs" in text
    bad = repo / PATTERNS / "other.json"
    bad.write_text('{"id": "other", "inputs": {"when": {"type": "timestamp"}}, "steps": []}')
    before = snapshot(repo)
    with pytest.raises(RunbookError, match="pattern other, input 'when': unknown type 'timestamp'"):
        add_input_schemas(repo)
    assert snapshot(repo) == before


# -- frontend-panels -------------------------------------------------------------------------------

def test_frontend_panels_points_the_ui_at_the_response_and_empties_the_registry(tmp_path):
    from runbook.tasks.code.frontend_panels import read_panels_from_backend

    repo = real_like(tmp_path / "real")
    orch = repo / "backend/app/core/pattern_orchestrator.py"
    orch.parent.mkdir(parents=True)
    orch.write_text(REAL_LIKE_ORCHESTRATOR)
    with pytest.raises(RunbookError, match="run `runbook codemod panels` first"):
        read_panels_from_backend(repo)                         # nothing is lost: panels first
    move_panels(repo)
    before = snapshot(repo)
    dry = read_panels_from_backend(repo, dry_run=True)
    assert snapshot(repo) == before and dry.files
    report = read_panels_from_backend(repo)
    line = REAL_LIKE_HTML.splitlines().index("        setPanels(metadata.display.panels || []);") + 1
    assert report.reads_rewritten == [f"full_ui.html:{line}: metadata.display.panels -> result.display.panels"]
    html = (repo / "full_ui.html").read_text()
    assert "setPanels(result.display.panels || []);" in html and "panels:" not in html
    assert "name: 'Overview', icon: '📊', category: 'portfolio'," in html
    assert "const metadata = patternRegistry[pattern];" in html          # non-panel reads stay
    # whole lines went (a display block on its own lines), or the pair within its line
    diff = report.diff()
    assert [ln for ln in added_lines(diff) if "result.display" not in ln and '"display"' not in ln] \
        == ["        other: { name: 'Other' },"]
    reg = find_registry(repo)
    assert reg.with_panels() == [] and reg.entries["other"].value == {"name": "Other"}
    assert '"display": {"panels": (spec.get("display") or {}).get("panels") or []}' in orch.read_text()
    assert read_panels_from_backend(repo).files == {}           # idempotent


def test_frontend_panels_refuses_a_read_it_cannot_point_at_a_response(tmp_path):
    from runbook.tasks.code.frontend_panels import read_panels_from_backend

    html = REAL_LIKE_HTML.replace("        return result?.data ?? null;\n    }\n",
                                  "        return result?.data ?? null;\n    }\n"
                                  "    function count(p) { return patternRegistry[p].display.panels.length; }\n")
    repo = real_like(tmp_path / "real", ("full_ui.html", html))
    orch = repo / "backend/app/core/pattern_orchestrator.py"
    orch.parent.mkdir(parents=True)
    orch.write_text(REAL_LIKE_ORCHESTRATOR)
    move_panels(repo)
    before = snapshot(repo)
    with pytest.raises(RunbookError, match=r"full_ui.html:\d+: `patternRegistry\[p\].display.panels`"):
        read_panels_from_backend(repo)
    assert snapshot(repo) == before
