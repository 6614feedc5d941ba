"""Week 0 Day 5 commands: the simpleeval and authorization codemods, and the evaluator gates."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from runbook.cli.app import codemod_app, console, gate_app

Repo = Annotated[Path, typer.Option(help="the target checkout (its backend/)")]
DryRun = Annotated[bool, typer.Option(help="print the diff, change nothing")]
Corpus = Annotated[Optional[Path], typer.Option(  # noqa: UP045 - typer reads Optional
    help="payloads, one expression a line, '#' comments (default: the shipped corpus)")]


@codemod_app.command("simpleeval")
def codemod_simpleeval(repo: Repo, dry_run: DryRun = False) -> None:
    """Replace eval() in the pattern orchestrator with a simpleeval evaluator bound to the
    step state, and add simpleeval to backend/requirements.txt."""
    from runbook.tasks.code.simpleeval import convert

    report = convert(repo, dry_run=dry_run)
    if dry_run:
        console.print(report.diff() or "(no change)", markup=False, highlight=False, soft_wrap=True)
    for where in report.replaced:
        console.print(f"eval() replaced at {where}", markup=False)
    console.print(f"{len(report.files)} files {'would change' if dry_run else 'changed'}; "
                  f"simpleeval requirement {report.requirement}")


@codemod_app.command("authorization")
def codemod_authorization(repo: Repo, dry_run: DryRun = False) -> None:
    """Check the caller's rights (from the verified token's role) on every route and in the orchestrator."""
    from runbook.tasks.code.authorization import add_authorization

    report = add_authorization(repo, dry_run=dry_run)
    if dry_run:
        console.print(report.diff() or "(no change)", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(report.files)} files {'would change' if dry_run else 'changed'}: "
                  + (", ".join(sorted(report.files)) or "already done"), markup=False)


@gate_app.command("evaluator")
def gate_evaluator(repo: Repo, corpus: Corpus = None) -> None:
    """Run every escape payload through the checkout's condition evaluator (each in its own
    process, with limits); exits 1 naming each payload that was not rejected."""
    from runbook.expectations.evaluator import CORPUS, load_corpus, run_corpus

    outcomes = run_corpus(repo, load_corpus(corpus or CORPUS))
    bad = [o for o in outcomes if not o.rejected]
    table = Table("line", "class", "payload", "verdict", title="escapes" if bad else None)
    for o in bad:
        table.add_row(str(o.payload.line), o.payload.kind, o.payload.expression[:80], o.verdict)
    if bad:
        console.print(table)
        for o in bad:
            console.print(f"NOT REJECTED ({o.verdict}): line {o.payload.line}: {o.payload.expression}"
                          f"  -> {o.detail[:100]}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(outcomes) - len(bad)}/{len(outcomes)} payloads rejected")
    raise typer.Exit(1 if bad else 0)


@gate_app.command("no-eval")
def gate_no_eval(repo: Repo) -> None:
    """No eval / exec / compile call left in backend/ (AST walk); names file:line of each."""
    from runbook.expectations.evaluator import find_eval_calls

    hits = find_eval_calls(repo)
    for h in hits:
        console.print(f"{h.path}:{h.line}: {h.name}: {h.text}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(hits)} eval/exec/compile calls")
    raise typer.Exit(1 if hits else 0)
