"""Code updates as reversible steps: a transform edits a clean worktree of the environment's
deployed commit, the result is committed on the environment's branch and deployed (API
restarted on it); revert = `git revert` on the branch and redeploy the previous commit."""
from __future__ import annotations

import shutil
from collections.abc import Callable

from runbook.context import RunContext
from runbook.tasks.code import git_ops
from runbook.tasks.code.transforms import CodeUpdate
from runbook.tasks.steps.core import Step
from runbook.tasks.target.deploy import api, deploy, deployed_commit

# (checkout, dry_run) -> report dict; may include "diff" (text) and "files" (count)
Transform = Callable[[object, bool], dict]


def env_branch(ctx: RunContext) -> str:
    return f"runbook/{ctx.environment}"


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
        create_markdown_artifact(key=f"code-{name.replace(':', '-')}"[:100], markdown="\n".join(lines),
                                 description=f"{name}: what the code update changed")
    except Exception:  # outside a run there is nowhere to publish
        pass


def code_update_step(name: str, transform: Transform, message: str) -> Step:
    def apply(ctx: RunContext, adopted: dict | None) -> dict:
        if adopted and adopted.get("commit"):
            # a crashed run committed and deployed already; make sure it is what runs now
            deploy(ctx, adopted["commit"])
            return adopted
        def work(wt):
            report = transform(wt, False)
            return report, git_ops.commit_all(wt, message)
        (report, commit), previous, wt = _in_scratch_worktree(ctx, name.replace(":", "-"), work)
        git_ops.remove_worktree(ctx.repo, wt)
        _publish(name, report, commit)
        report = {k: v for k, v in report.items() if k != "diff"}
        if commit is None:
            api(ctx).start()
            return {"previous": previous, "commit": None, "report": report}
        git_ops.set_branch(ctx.repo, env_branch(ctx), commit)
        deploy(ctx, commit)
        return {"previous": previous, "commit": commit, "branch": env_branch(ctx), "report": report}

    def revert(ctx: RunContext, data: dict) -> None:
        if not data.get("commit"):
            return
        path = ctx.workspace / "tmp" / f"revert-{ctx.flow_run_id[:8]}"
        wt = git_ops.worktree(ctx.repo, path, data["commit"])
        try:
            git_ops.revert_commit(wt, data["commit"], data.get("branch", env_branch(ctx)))
        finally:
            git_ops.remove_worktree(ctx.repo, wt)
        deploy(ctx, data["previous"])

    return Step(name, apply, revert)


def code_update(update: CodeUpdate) -> Step:
    """The step of one of the plan's code updates."""
    return code_update_step(update.step, update.transform, update.message)
