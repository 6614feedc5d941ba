from app.agents import AgentRegistry
from app.core.pattern_orchestrator import PatternOrchestrator


def make():
    return PatternOrchestrator(registry=AgentRegistry())


def test_all_patterns_load():
    orch = make()
    assert len(orch.list_patterns()) == 13
    for pattern_id in orch.list_patterns():
        spec = orch.get_pattern(pattern_id)
        assert spec["id"] == pattern_id and spec["steps"]


def test_whole_template_keeps_type(positions):
    orch = make()
    state = {"inputs": {"portfolio_id": "p1"}, "valued_positions": {"positions": positions}}
    assert orch._render("{{valued_positions.positions}}", state) is positions
    assert orch._render("id={{inputs.portfolio_id}}", state) == "id=p1"


def test_condition_on_total_qty_open():
    orch = make()
    state = {"inputs": {}, "valued_positions": {"total_qty_open": 150.0}}
    assert orch._eval_condition("{{valued_positions.total_qty_open}} > 0", state)
    state["valued_positions"]["total_qty_open"] = 0.0
    assert not orch._eval_condition("{{valued_positions.total_qty_open}} > 0", state)


def test_broken_condition_is_false():
    orch = make()
    assert not orch._eval_condition("{{missing.value}} > 0", {"inputs": {}})
