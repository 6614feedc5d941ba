"""The layout holds: one installable package whose layers point down only (import-linter
contracts in pyproject.toml, checked on a non-editable install, where the mapped folders form
one tree), with every module and data file of the source folders in it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# runbook.<name> is the top-level folder <name>/ (pyproject.toml's package-dir)
MAPPED = {"flows": "flows", "tasks": "tasks", "expectations": "expectations", "deployments": "deployments",
          "demo": "demo", "migrations": "migrations"}


def _installed_root(python: Path) -> Path:
    out = subprocess.run([python, "-P", "-c", "import runbook; print(runbook.__path__[0])"],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return Path(out.stdout.strip())


def lint_imports(python: Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    # run away from the checkout: import-linter puts its cwd on sys.path, and the checkout's
    # runbook/ folder would shadow the installed package
    return subprocess.run([python, "-P", "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_layers_point_down(installed_python, tmp_path):
    r = lint_imports(installed_python, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "layers point down KEPT" in r.stdout and "0 broken" in r.stdout


def test_an_upward_import_breaks_the_contract(installed_python, tmp_path):
    """The contract can fail: a database primitive that imports a flow is reported by name."""
    copy = tmp_path / "runbook"
    shutil.copytree(_installed_root(installed_python), copy)
    ledger = copy / "tasks" / "database" / "ledger.py"
    ledger.write_text(ledger.read_text() + "\nimport runbook.flows.standup  # an upward import\n")
    r = lint_imports(installed_python, tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 1, r.stdout[-3000:]
    assert "layers point down BROKEN" in r.stdout
    assert "runbook.tasks.database.ledger -> runbook.flows.standup" in r.stdout


def test_every_source_file_is_installed(installed_python):
    """Every .py, .sql and .txt of the mapped folders (and runbook/) is in the installed package,
    at its mapped place: nothing works only from the checkout."""
    installed = _installed_root(installed_python)
    missing = []
    for package_dir, folder in [("", "runbook"), *((k + "/", v) for k, v in MAPPED.items())]:
        for path in (ROOT / folder).rglob("*"):
            rel = path.relative_to(ROOT / folder)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix in (".py", ".sql", ".txt", ".json", ".md"):
                if not (installed / package_dir / rel).is_file():
                    missing.append(f"{folder}/{rel}")
    assert not missing, missing[:20]


def test_every_module_imports(installed_python):
    """Every module of the installed package imports (flows build at import time)."""
    code = ("import importlib, pkgutil, runbook\n"
            "names = [m.name for m in pkgutil.walk_packages(runbook.__path__, 'runbook.')\n"
            "         if '.template' not in m.name]\n"
            "for n in names: importlib.import_module(n)\n"
            "print(len(names))\n")
    r = subprocess.run([installed_python, "-P", "-c", code], capture_output=True, text=True, cwd="/",
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert int(r.stdout.strip()) > 80
