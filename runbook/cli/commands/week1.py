"""Week 1 Days 3-5 as commands: the pattern-system codemods (previewable with --dry-run), each
printing everything it reconciled — pairings, unmatched panels, conflicts — not only the diff."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runbook.cli.app import codemod_app, console

Repo = Annotated[Path, typer.Option(help="the target checkout (backend/ and the frontend)")]
DryRun = Annotated[bool, typer.Option(help="print the diff, change nothing")]


def _print(report: dict, dry_run: bool) -> None:
    if dry_run:
        console.print(report.get("diff") or "(no change)", markup=False, highlight=False, soft_wrap=True)
    for key, value in report.items():
        if key == "diff":
            continue
        if isinstance(value, list):
            console.print(f"{key.replace('_', ' ')}: {len(value)}", markup=False)
            for item in value:
                console.print(f"  {item}", markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(f"{key.replace('_', ' ')}: {value}", markup=False, highlight=False)
    console.print(f"{report.get('files', 0)} files {'would change' if dry_run else 'changed'}")


def _run(name: str, repo: Path, dry_run: bool) -> None:
    from runbook.tasks.code.transforms import WEEK1_UPDATES

    update = next(u for u in WEEK1_UPDATES if u.preview == name)
    _print(update.transform(repo, dry_run), dry_run)


@codemod_app.command("panels")
def codemod_panels(repo: Repo, dry_run: DryRun = False) -> None:
    """Move the frontend registry's panel definitions (dataPath, columns, config) into the
    backend pattern JSON: paired by id, then by (title, type); lists every pairing by title,
    unmatched panel and conflict."""
    _run("panels", repo, dry_run)


@codemod_app.command("input-schemas")
def codemod_input_schemas(repo: Repo, dry_run: DryRun = False) -> None:
    """Generate Pydantic v2 input models from each pattern's inputs (one per pattern, unknown
    inputs forbidden) and validate in run_pattern before anything runs (HTTP 422)."""
    _run("input-schemas", repo, dry_run)


@codemod_app.command("frontend-panels")
def codemod_frontend_panels(repo: Repo, dry_run: DryRun = False) -> None:
    """Pattern responses carry display.panels; the frontend reads panels from the response; the
    registry keeps only what is not a panel. Refuses while registry panels are not in the
    pattern JSON (run `panels` first)."""
    _run("frontend-panels", repo, dry_run)
