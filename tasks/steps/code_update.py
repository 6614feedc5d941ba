"""Code updates as reversible steps: a transform edits a clean worktree of the environment's
deployed commit, the result is committed on the environment's branch and deployed (API
restarted on it); revert = `git revert` on the branch and redeploy the previous commit."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from runbook import failpoints
from runbook.context import RunContext
from runbook.errors import RunbookError
from runbook.expectations import latency
from runbook.tasks.code import git_ops
from runbook.tasks.code.transforms import CodeUpdate
from runbook.tasks.notify.redact import configured_secrets, redact
from runbook.tasks.steps.core import Step, publish_gate
from runbook.tasks.target.deploy import deploy, deployed_commit

# code changes deployed by this run whose step has not finished (ctx.extra key)
DEPLOYED = "deployed_code"

RUN_TRAILER, STEP_TRAILER = "Runbook-Run", "Runbook-Step"

# (checkout, dry_run) -> report dict; may include "diff" (text) and "files" (count)
Transform = Callable[[object, bool], dict]


def env_branch(ctx: RunContext) -> str:
    return f"runbook/{ctx.slot}"


def preview(ctx: RunContext, transforms: list[tuple[str, Transform]]) -> dict[str, dict]:
    """Dry run of a day's transforms, in order, on one throwaway worktree of the deployed
    commit: each applied there on what the ones before it changed (a later update may build on
    an earlier one), each report with its own diff. The deployed code is never touched."""
    def run_all(wt) -> dict[str, dict]:
        return {name: transform(wt, False) for name, transform in transforms}
    reports, _base, wt = _in_scratch_worktree(ctx, "preview", run_all)
    git_ops.remove_worktree(ctx.repo, wt)
    return reports


def _in_scratch_worktree(ctx: RunContext, label: str, fn):
    base = deployed_commit(ctx)
    path = ctx.workspace / "tmp" / f"{label}-{ctx.flow_run_id[:8]}"
    if path.exists():
        git_ops.remove_worktree(ctx.repo, path)
        shutil.rmtree(path, ignore_errors=True)
    wt = git_ops.worktree(ctx.repo, path, base)
    return fn(wt), base, wt


def _publish(name: str, report: dict, commit: str | None) -> None:
    """The change for review in the UI: counts, items to review, and the diff (bounded)."""
    from prefect.artifacts import create_markdown_artifact

    lines = [f"# {name}", "", f"commit: `{commit or 'no change'}`", ""]
    for key, value in report.items():
        if key == "diff":
            continue
        if isinstance(value, list):
            lines += [f"**{key}** ({len(value)})", *[f"- `{v}`" for v in value[:200]], ""]
        else:
            lines.append(f"**{key}:** {value}")
    if report.get("diff"):
        lines += ["", "```diff", report["diff"][:50_000], "```"]
    try:
        create_markdown_artifact(key=f"code-{name.replace(':', '-')}"[:100],
                                 markdown=redact("\n".join(lines), configured_secrets()),
                                 description=f"{name}: what the code update changed")
    except Exception:  # outside a run there is nowhere to publish
        pass


# in a worktree at the deployed commit: (report, the new commit or None when nothing changed)
Change = Callable[[RunContext, Path], tuple[dict, str | None]]


def code_update_step(name: str, transform: Transform, message: str) -> Step:
    """A codemod's edit, committed."""
    return code_change_step(name, lambda _ctx, wt: (transform(wt, False), git_ops.commit_all(wt, message)))


def change_set_step(name: str, message: str) -> Step:
    """A change set: the team's branch (the run's `change_ref`) merged onto the environment's
    deployed commit as one merge commit (reverted as one)."""
    def merge(ctx: RunContext, wt: Path) -> tuple[dict, str]:
        ref, before = change_ref(ctx), git_ops.head(wt)
        commit = git_ops.merge(wt, ref, f"{message} (change set {ref})")
        return {"change_ref": ref, "files": git_ops.changed_files(wt, before, commit)}, commit
    return code_change_step(name, merge)


def change_ref(ctx: RunContext) -> str:
    ref = ctx.parameters.get("change_ref")
    if not ref:
        raise RunbookError(f"{ctx.flow_name}: no change set (parameter change_ref)")
    return ref


def change_set_diff(ctx: RunContext) -> str:
    """What merging the change set would change on the deployed code: its diff since the code it
    was branched from (the fork point), else since the merge base."""
    ref, base = change_ref(ctx), deployed_commit(ctx)
    since = git_ops.fork_point(ctx.repo, ref, base) or git_ops.git(ctx.repo, "merge-base", base, ref)
    return git_ops.git(ctx.repo, "diff", "--stat", since, ref) + "\n\n" + git_ops.git(ctx.repo, "diff", since, ref)


def code_change_step(name: str, change: Change) -> Step:
    """One mechanism for every code change: made in a scratch worktree of the deployed commit,
    committed on the environment's branch, deployed (API restarted); reverted by `git revert`
    and a redeploy of the commit before."""
    def apply(ctx: RunContext, adopted: dict | None) -> dict:
        if adopted and adopted.get("commit"):
            # a crashed run committed and deployed already; make sure it is what runs now
            deploy(ctx, adopted["commit"])
            return adopted
        latency.remember_baseline(ctx)

        def made(wt: Path) -> tuple[dict, str | None]:
            report, commit = change(ctx, wt)
            # who made it, so a run killed before the ledger heard of it can be found (recovery.py)
            return report, commit and git_ops.add_trailers(wt, {RUN_TRAILER: ctx.flow_run_id, STEP_TRAILER: name})
        (report, commit), previous, wt = _in_scratch_worktree(ctx, name.replace(":", "-"), made)
        git_ops.remove_worktree(ctx.repo, wt)
        _publish(name, report, commit)
        report = {k: v for k, v in report.items() if k != "diff"}
        if commit is None:
            return {"previous": previous, "commit": None, "report": report, "noop": True}
        git_ops.set_branch(ctx.repo, env_branch(ctx), commit)
        failpoints.reached("code:branch-moved")
        deploy(ctx, commit)
        data = {"previous": previous, "commit": commit, "branch": env_branch(ctx), "report": report}
        # deployed: if the latency gate fails, the partial revert below takes this change back
        ctx.extra.setdefault(DEPLOYED, {})[name] = data
        publish_gate(latency.after_change(ctx, name)).raise_if_failed()
        return data

    def revert(ctx: RunContext, data: dict) -> None:
        data = data if data.get("commit") else ctx.extra.get(DEPLOYED, {}).pop(name, {})
        if not data.get("commit"):
            return
        path = ctx.workspace / "tmp" / f"revert-{ctx.flow_run_id[:8]}"
        wt = git_ops.worktree(ctx.repo, path, data["commit"])
        try:
            git_ops.revert_commit(wt, data["commit"], data.get("branch", env_branch(ctx)))
        finally:
            git_ops.remove_worktree(ctx.repo, wt)
        deploy(ctx, data["previous"])

    return Step(name, apply, revert, revert_partial=True)


def code_update(update: CodeUpdate) -> Step:
    """The step of one of the plan's code updates."""
    return code_update_step(update.step, update.transform, update.message)
