"""The gate inventory: every registered gate has a test in which it fails, and docs/gates.md is
what the registry and the tests say now."""
from __future__ import annotations

import pytest

from runbook.cli.gate_inventory import (
    DOC,
    ROOT,
    failing_tests,
    load_gates,
    main,
    render,
    without_failing_test,
)


def test_every_registered_gate_has_a_test_in_which_it_fails():
    gates, tests = load_gates(), failing_tests(ROOT / "tests")
    assert gates, "no gate registered: the registry is not being read"
    missing = without_failing_test(gates, tests)
    assert missing == [], "gates without a failing test: " + ", ".join(missing)


def test_docs_gates_md_is_current():
    expected = render(load_gates(), failing_tests(ROOT / "tests"))
    assert (ROOT / DOC).read_text(encoding="utf-8") == expected, \
        f"{DOC} is stale: run `runbook gates` and commit it"


def test_the_check_fails_on_a_gate_without_a_failing_test_and_on_a_stale_doc(tmp_path, capsys):
    """A copy of the tests without one gate's markers, and a stale doc: --check names both."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "gates.md").write_text("stale\n")
    (tmp_path / "tests").mkdir()
    for path in (ROOT / "tests").glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        (tmp_path / "tests" / path.name).write_text(
            text.replace('gate_fails("preflight:disk")', 'gate_fails("something-else")'))
    assert main(["--check"], root=tmp_path) == 1
    err = capsys.readouterr().err
    assert "gate without a failing test: preflight:disk" in err
    assert "docs/gates.md is stale" in err


@pytest.mark.parametrize("marker,gate,hit", [("squawk", "squawk", True), ("squawk:014", "squawk", True),
                                             ("squawky", "squawk", False)])
def test_a_marker_covers_its_gate_and_the_gates_instances(marker, gate, hit):
    from runbook.cli.gate_inventory import covers
    assert covers(marker, gate) is hit
