"""Operations commands: standup, rollback (migration / code), verify, contract."""
from __future__ import annotations

from typing import Optional

import typer
from rich.markdown import Markdown

from runbook.cli.app import _prefect_defaults, app, console
from runbook.errors import RunbookError

rollback_app = typer.Typer(help="The plan's Rollback Procedures, timed against their budgets.",
                           no_args_is_help=True)
app.add_typer(rollback_app, name="rollback")


@app.command()
def standup(since: Optional[str] = typer.Option(None, help="ISO date/time to report from"),  # noqa: UP045 - typer
            since_last: bool = typer.Option(True, "--since-last/--all",
                                            help="from the last completed standup (default)"),
            slack: bool = typer.Option(True, help="post it to Slack too")) -> None:
    """Daily standup from flow and task run states, with the plan's Progress Tracking checklist."""
    from runbook.flows.standup import parse_since
    from runbook.flows.standup import standup as standup_flow

    parse_since(since)   # a bad --since fails here, before any run is recorded
    _prefect_defaults()
    if since and not since_last:
        raise RunbookError("--since and --all contradict each other; pass one")
    md = standup_flow(since=since, post_to_slack=slack) if since_last or since else \
        standup_flow(since="1970-01-01T00:00:00+00:00", post_to_slack=slack)
    console.print(Markdown(md))


@app.command()
def verify(environment: str = typer.Option("staging", help="staging or production")) -> None:
    """Re-run every gate the ledger says should hold; exits 1 on drift (and alerts Slack)."""
    from runbook.flows.verification import verification

    _prefect_defaults()
    try:
        out = verification(environment=environment)
    except RunbookError as exc:
        if "gate(s) failed" not in str(exc):
            raise
        console.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"[green]verification on {environment}: {len(out.results)} gates hold[/] "
                  f"({', '.join(out.checks) or 'nothing applied yet'})")


@rollback_app.command("migration")
def rollback_migration_cmd(migration_id: str = typer.Argument(..., help="e.g. 014_standardize_quantity_fields"),
                           environment: str = typer.Option(..., help="staging or production"),
                           revert_code: bool = typer.Option(True, help="revert the applying run's code first")) -> None:
    """Roll back a migration (down.sql + restore proof + ledger + smoke); < 15 min budget."""
    from runbook.flows.rollback import rollback_migration

    _prefect_defaults()
    _print(rollback_migration(migration_id=migration_id, environment=environment, revert_code=revert_code))


@rollback_app.command("code")
def rollback_code_cmd(run: str = typer.Option(..., "--run", help="flow run id whose code steps to revert"),
                      environment: Optional[str] = typer.Option(None, help="default: the run's own")  # noqa: UP045
                      ) -> None:
    """Roll back a run's code changes (git revert + redeploy + smoke); < 5 min budget."""
    from runbook.flows.rollback import rollback_code

    _prefect_defaults()
    _print(rollback_code(run=run, environment=environment))


def _print(report: dict) -> None:
    colour = "green" if report["within_budget"] else "yellow"
    console.print(f"[{colour}]{report['what']} on {report['environment']}: rolled back in "
                  f"{report['elapsed_s']:.1f}s (budget {report['budget_s'] / 60:.0f} min)[/]")
    for item in report["reverted"]:
        console.print(f"  reverted: {item}", markup=False)
