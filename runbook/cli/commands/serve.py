"""`runbook serve`: the flows as Prefect deployments (UI forms, schedules) on a Prefect server."""
from __future__ import annotations

import typer
from rich.table import Table

from runbook.cli.app import _prefect_defaults, app, console, err
from runbook.errors import RunbookError


@app.command()
def serve(verify_cron: str | None = typer.Option(
              None, help="cron of the nightly verification run (env RUNBOOK_VERIFY_CRON; default '0 2 * * *')"),
          standup_cron: str | None = typer.Option(
              None, help="cron of the standup report (env RUNBOOK_STANDUP_CRON; default '0 9 * * 1-5')"),
          timezone: str | None = typer.Option(
              None, help="IANA time zone of both schedules (env RUNBOOK_SCHEDULE_TIMEZONE; default UTC)"),
          limit: int | None = typer.Option(None, min=1, help="most flow runs at once"),
          list_only: bool = typer.Option(False, "--list", help="show what would be served, serve nothing")) -> None:
    """Serve every plan flow (plus verification, standup, contract, rollback) to the Prefect
    server at PREFECT_API_URL, then run what is triggered from the UI or by a schedule."""
    from runbook.deployments.build import collect
    from runbook.deployments.serve import serve as serve_all
    from runbook.deployments.settings import load_serve_settings

    settings = load_serve_settings(verify_cron=verify_cron, standup_cron=standup_cron,
                                   schedule_timezone=timezone)

    def warn(skipped) -> None:
        err.print(f"[yellow]not served:[/] {skipped.entrypoint}: {skipped.reason}", highlight=False)

    if list_only:
        deployments, skipped = collect(settings)
        table = Table(title="deployments")
        table.add_column("deployment", overflow="fold")
        table.add_column("tags")
        table.add_column("schedules")
        for d in deployments:
            crons = "\n".join(f"{s.schedule.cron} {s.schedule.timezone} {s.parameters or ''}".rstrip()
                              for s in d.schedules)
            table.add_row(f"{d.flow_name}/{d.name}", ", ".join(d.tags), crons or "-")
        console.print(table)
        for s in skipped:
            warn(s)
        return
    _prefect_defaults()
    try:
        serve_all(settings, limit=limit, on_skip=warn)
    except RunbookError as exc:
        # one line whatever the terminal width: an operator greps for it
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def deploy(work_pool: str = typer.Option(..., "--work-pool", help="the Prefect work pool (a process pool is created if missing)"),
           verify_cron: str | None = typer.Option(None, help="cron of the nightly verification run"),
           standup_cron: str | None = typer.Option(None, help="cron of the standup report"),
           timezone: str | None = typer.Option(None, help="IANA time zone of both schedules")) -> None:
    """Register every flow's deployment on a work pool: `prefect worker start --pool NAME`
    processes (any number, any machine with the runbook installed) then run them."""
    from runbook.deployments.settings import load_serve_settings
    from runbook.deployments.work_pool import deploy_to_pool

    settings = load_serve_settings(verify_cron=verify_cron, standup_cron=standup_cron,
                                   schedule_timezone=timezone)
    _prefect_defaults()
    try:
        names = deploy_to_pool(settings, work_pool, on_skip=lambda s: err.print(
            f"[yellow]not deployed:[/] {s.entrypoint}: {s.reason}", highlight=False))
    except RunbookError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for name in names:
        console.print(f"deployed {name} on work pool {work_pool}", highlight=False)
    console.print(f"start workers with: prefect worker start --pool {work_pool}", highlight=False)
