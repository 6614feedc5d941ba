"""Real git through its CLI: branches, commits, reverts and per-environment worktrees."""
from __future__ import annotations

import subprocess
from pathlib import Path

from runbook.errors import RunbookError

AUTHOR = ["-c", "user.name=DawsOS runbook", "-c", "user.email=runbook@dawsos.invalid"]


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *AUTHOR, "-C", str(repo), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RunbookError(f"git {' '.join(args[:2])} in {repo} failed: {proc.stderr.strip()[:300]}")
    return proc.stdout.strip()


def ensure_repo(repo: Path) -> None:
    if not (Path(repo) / ".git").exists() and not git(repo, "rev-parse", "--git-dir", check=False):
        raise RunbookError(f"TARGET_REPO {repo} is not a git repository")


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def ref_exists(repo: Path, ref: str) -> bool:
    return bool(git(repo, "rev-parse", "--verify", "--quiet", ref, check=False))


def is_dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain"))


def commit_all(repo: Path, message: str) -> str | None:
    """Commit every change in the work tree; None when there was nothing to commit."""
    if not is_dirty(repo):
        return None
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return head(repo)


def worktree(repo: Path, path: Path, ref: str) -> Path:
    """A detached worktree of repo at ref (re-pointed if it exists)."""
    path = Path(path)
    if (path / ".git").exists():
        git(path, "checkout", "-q", "--detach", ref)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        git(repo, "worktree", "add", "-q", "--detach", str(path), ref)
    return path


def remove_worktree(repo: Path, path: Path) -> None:
    git(repo, "worktree", "remove", "--force", str(path), check=False)


def set_branch(repo: Path, branch: str, commit: str) -> None:
    git(repo, "branch", "-f", branch, commit)


def revert_commit(worktree_path: Path, commit: str, branch: str) -> str:
    """`git revert` commit on branch (history keeps both), in the given worktree."""
    git(worktree_path, "checkout", "-q", "--detach", branch)
    git(worktree_path, "revert", "--no-edit", commit)
    new = head(worktree_path)
    git(worktree_path, "branch", "-f", branch, new)
    return new
