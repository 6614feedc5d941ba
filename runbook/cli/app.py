"""`runbook`: every flow, code update and gate as a command."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from runbook.errors import RunbookError


def _isolate_demo_prefect_home(argv: list[str]) -> None:
    """`runbook demo` without a Prefect server keeps its run history (read back for the
    standup) in the workspace, apart from any other local Prefect use. Prefect reads its
    settings once, at import, so this must happen before anything imports prefect."""
    if len(argv) > 1 and argv[1] == "demo" and not os.environ.get("PREFECT_API_URL") \
            and not os.environ.get("PREFECT_HOME"):
        ws = Path(".runbook-demo")
        for i, a in enumerate(argv):
            if a == "--workspace" and i + 1 < len(argv):
                ws = Path(argv[i + 1])
            elif a.startswith("--workspace="):
                ws = Path(a.split("=", 1)[1])
        os.environ["PREFECT_HOME"] = str(ws.resolve() / "prefect")


_isolate_demo_prefect_home(sys.argv)
# the runbook's own log lines (steps, retries, alerts) go to the run's logs in the Prefect UI
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "runbook")

app = typer.Typer(help="DawsOS refactor runbook: gated, reversible Prefect flows for the "
                       "backend refactoring plan.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
codemod_app = typer.Typer(help="Code updates, previewable with --dry-run.", no_args_is_help=True)
gate_app = typer.Typer(help="Run one gate on its own; exits 1 if it does not hold.", no_args_is_help=True)
app.add_typer(codemod_app, name="codemod")
app.add_typer(gate_app, name="gate")
console = Console()
err = Console(stderr=True)


def _prefect_defaults() -> None:
    # the ephemeral Prefect API starts a local server; give a busy machine time to start it
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _parse_params(items: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs as strings: the flow's own signature converts and checks them."""
    out = {}
    for item in items:
        if "=" not in item or not item.split("=", 1)[0]:
            raise RunbookError(f"--param {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k] = v
    return out


def refuse_dirty_repo(repo: Path) -> None:
    """Uncommitted changes in TARGET_REPO are not deployed (a run deploys commits): refuse,
    naming them, rather than run without them in silence."""
    from runbook.tasks.code.git_ops import uncommitted_files

    files = uncommitted_files(repo)
    if files:
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        raise RunbookError(f"TARGET_REPO {repo} has uncommitted changes a run would not deploy: {shown}; "
                           "commit or stash them, or pass --allow-dirty")


@app.command()
def demo(workspace: Path = typer.Option(Path(".runbook-demo"), help="where the demo lives"),
         fresh: bool = typer.Option(False, help="rebuild the workspace from scratch"),
         rows: int = typer.Option(10_000, help="lots (and transactions) to seed"),
         reset: bool = typer.Option(True, help="on a reused workspace, start again from the seeded "
                                               "databases and code (--no-reset: go on from where it is)"),
         keep: bool = typer.Option(False, help="leave the embedded PostgreSQL running afterwards"),
         drill: bool = typer.Option(False, help="the fire drill: a late commit reintroduces an old "
                                                "name, a gate fails, rollback, restore proof, alert, "
                                                "then the corrected run"),
         through: Optional[str] = typer.Option(None, help="run the plan only through this day (e.g. "  # noqa: UP045
                                                          "week1-day3-5); default: every day"),
         stop: bool = typer.Option(False, help="stop a server kept by an earlier --keep, and exit")) -> None:
    """Build (or reuse) the demo DawsOS target on embedded PostgreSQL, run every plan flow on
    staging then production, and smoke-test all 13 patterns through the API. Progress and
    results on the terminal, everything else in a log file named at the end."""
    from runbook.cli.demo import run_demo, stop_demo
    from runbook.cli.quiet import divert_output, log_path

    from runbook.plan import by_key

    last = by_key(through).key if through else None     # an unknown day: one line, exit 2
    term = divert_output(log_path(workspace, "demo"))
    shown = Console(file=term.out)
    if stop:
        sys.exit(stop_demo(workspace, shown))
    code = guarded(lambda: _fresh_then(workspace, fresh) or run_demo(
        workspace, rows=rows, console=shown, keep=keep, reset=reset, drill=drill, through=last), term)
    shown.print(f"details: {term.log}", highlight=False)
    sys.exit(code)


def _fresh_then(workspace: Path, fresh: bool) -> None:
    _prefect_defaults()
    if fresh:
        from runbook.demo.workspace import remove_workspace

        remove_workspace(workspace, keep=("logs",))


def guarded(body, term) -> int:
    """Run body; an error is one line on the terminal, its traceback in the log."""
    import traceback

    try:
        return body()
    except RunbookError as exc:
        traceback.print_exc()
        print(f"error: {exc}", file=term.err)
    except Exception as exc:  # noqa: BLE001 - a crash too is one line here, the rest in the log
        traceback.print_exc()
        print(f"error: {type(exc).__name__}: {exc}", file=term.err)
    return 1


@app.command()
def run(flow: str = typer.Argument(..., help="plan day, e.g. week0-day1-2"),
        param: list[str] = typer.Option([], "--param", "-p", help="KEY=VALUE flow parameter"),
        allow_dirty: bool = typer.Option(False, "--allow-dirty", help="run although TARGET_REPO has "
                                         "uncommitted changes (they are not deployed)")) -> None:
    """Run one plan flow against the configured target (DATABASE_URL, TARGET_REPO, ...)."""
    from rich.progress import Progress

    from runbook.parameters import check_all
    from runbook.plan import by_key
    from runbook.tasks.steps.migration import add_progress_listener

    _prefect_defaults()
    day = by_key(flow)
    day_flow = day.load()
    # fail fast, in one line, on a wrong parameter, setting or checkout (before Prefect starts)
    params = check_all(day_flow, _parse_params(param), day.key)
    from runbook.context import build_context

    ctx = build_context(day.flow_name, params.get("environment", "staging"), "cli-check",
                        target=params.get("target"))
    if not allow_dirty:
        refuse_dirty_repo(ctx.repo)
    with Progress(console=console, transient=True) as progress:
        bars: dict[str, int] = {}

        def show(table: str, done: int, total: int) -> None:
            if table not in bars:
                bars[table] = progress.add_task(f"backfill {table}", total=max(total, 1))
            progress.update(bars[table], completed=done)
        add_progress_listener(show)
        outcome = day_flow(**params)
    console.print(f"[green]{day.flow_name}: {outcome.status}[/] — applied: {', '.join(outcome.applied) or 'nothing'}")


@codemod_app.command("rename")
def codemod_rename(repo: Path = typer.Option(..., help="git work tree to edit"),
                   map_: list[str] = typer.Option(..., "--map", help="OLD=NEW (repeatable)"),
                   exclude: list[str] = typer.Option([], help="glob of paths to leave alone"),
                   dry_run: bool = typer.Option(False, help="print the diff, change nothing")) -> None:
    """Rename identifiers across a repo (bounded matches only; bytes, encodings and modes kept)."""
    from runbook.tasks.code.rename import parse_map, rename

    report = rename(repo, parse_map(map_), exclude=exclude, dry_run=dry_run)
    if dry_run:
        console.print(report.diff(), markup=False, highlight=False)
    table = Table("file", "replacements", title="dry run" if dry_run else "renamed")
    for path, count in report.counts_table():
        table.add_row(path, str(count))
    console.print(table)
    console.print(f"{report.total} replacements in {len(report.changes)} files; "
                  f"{len(report.near_misses)} near-misses left alone; {len(report.aliases)} aliases to review")
    for o in report.aliases:
        console.print(f"  alias to review: {o.path}:{o.line}: {o.text.strip()}", markup=False)


@app.command("gates")
def gates(check: bool = typer.Option(False, "--check", help="write nothing; exit 1 when docs/gates.md "
                                     "is stale or a gate has no failing test")) -> None:
    """Write docs/gates.md, the gate inventory, from the gate registry and the tests."""
    from runbook.cli.gate_inventory import main as inventory

    raise typer.Exit(inventory(["--check"] if check else []))


@gate_app.command("old-names")
def gate_old_names(repo: Path = typer.Option(...), name: list[str] = typer.Option(["qty_open", "qty_original"]),
                   exclude: list[str] = typer.Option(["backend/db/migrations/0*", "backend/db/schema/*"])) -> None:
    """The plan's grep validation by the boundary rule: 0 occurrences of the old names."""
    from runbook.tasks.code.rename import find_old_names

    found, near = find_old_names(repo, name, exclude=exclude)
    for o in found:
        console.print(f"{o.path}:{o.line}:{o.column}: {o.name}", markup=False)
    console.print(f"{len(found)} occurrences, {len(near)} near-misses left alone")
    raise typer.Exit(1 if found else 0)


import runbook.cli.commands  # noqa: F401  (registers the commands of runbook/commands/*)


def main() -> None:
    try:
        app()
    except RunbookError as exc:
        print(f"error: {exc}", file=sys.stderr)   # one line, never wrapped
        sys.exit(2)
