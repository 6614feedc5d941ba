"""Real git through its CLI: branches, commits, reverts and per-environment worktrees."""
from __future__ import annotations

import re
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


def uncommitted_files(repo: Path) -> list[str]:
    """Files whose changes a run would not deploy: modified or staged (against HEAD), and
    untracked ones git does not ignore."""
    changed = git(repo, "diff", "--name-only", "HEAD").splitlines()
    untracked = git(repo, "ls-files", "--others", "--exclude-standard").splitlines()
    return sorted(set(filter(None, changed + untracked)))


def is_dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain"))


def commit_all(repo: Path, message: str) -> str | None:
    """Commit every change in the work tree; None when there was nothing to commit."""
    if not is_dirty(repo):
        return None
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return head(repo)


def add_trailers(repo: Path, trailers: dict[str, str]) -> str:
    """Amend HEAD (a commit not yet on any branch) with `Key: value` trailers; the new sha."""
    args = [a for k, v in trailers.items() for a in ("--trailer", f"{k}: {v}")]
    git(repo, "commit", "-q", "--amend", "--no-edit", *args)
    return head(repo)


def commits_with_trailer(repo: Path, ref: str, key: str) -> list[dict]:
    """Commits reachable from ref carrying trailer `key`, newest first: sha, parent, value, and
    the trailers' other keys."""
    out = git(repo, "log", ref, "--format=%H%x00%P%x00%(trailers:only,unfold)%x1e")
    found = []
    for record in out.split("\x1e"):
        if not record.strip():
            continue
        sha, parents_, trailers = record.strip("\n").split("\x00")
        values = dict(line.split(": ", 1) for line in trailers.splitlines() if ": " in line)
        if key in values:
            found.append({"sha": sha, "parent": parents_.split()[0] if parents_ else None, **values})
    return found


def is_ancestor(repo: Path, commit: str, ref: str) -> bool:
    """`commit` is in `ref`'s history (`ref` itself included)."""
    return subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, ref],
                          capture_output=True).returncode == 0


def reverted_commits(repo: Path, ref: str) -> set[str]:
    """Shas that a later `git revert` commit on ref reverted ("This reverts commit X." or, for
    a merge, "This reverts commit X, reversing changes made to Y.")."""
    out = git(repo, "log", ref, "--grep=This reverts commit", "--format=%B")
    return set(re.findall(r"This reverts commit ([0-9a-f]{7,64})\b", out))


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


def parents(repo: Path, commit: str) -> list[str]:
    return git(repo, "rev-list", "--parents", "-n", "1", commit).split()[1:]


def revert_commit(worktree_path: Path, commit: str, branch: str) -> str:
    """`git revert` commit on branch (history keeps both), in the given worktree; a merge is
    reverted to its first parent (the branch it was merged onto)."""
    git(worktree_path, "checkout", "-q", "--detach", branch)
    mainline = ["-m", "1"] if len(parents(worktree_path, commit)) > 1 else []
    git(worktree_path, "revert", "--no-edit", *mainline, commit)
    new = head(worktree_path)
    git(worktree_path, "branch", "-f", branch, new)
    return new


def fork_point(repo: Path, ref: str, onto: str, depth: int = 1000) -> str | None:
    """The newest commit in `ref`'s history whose tree is `onto`'s tree: the team branched
    from exactly the code `onto` holds (the same code, whatever commit it sits on: staging's and
    production's branches hold the same code as different commits). None when there is none."""
    tree = git(repo, "rev-parse", f"{onto}^{{tree}}")
    for line in git(repo, "log", f"-n{depth}", "--format=%H %T", ref).splitlines():
        commit, commit_tree = line.split()
        if commit_tree == tree:
            return commit
    return None


def merge_conflicts(repo: Path, base: str, ref: str) -> list[str] | None:
    """Files that conflict when `ref` is merged onto `base` (an empty list: it merges cleanly);
    None when git cannot tell (no merge base). Nothing is written to any branch or worktree."""
    if fork_point(repo, ref, base):
        return []
    proc = subprocess.run(["git", *AUTHOR, "-C", str(repo), "merge-tree", "--write-tree", "--name-only",
                           "--no-messages", base, ref], capture_output=True, text=True)
    if proc.returncode == 0:
        return []
    if proc.returncode == 1:
        return [line for line in proc.stdout.splitlines()[1:] if line.strip()]
    return None


def merge(worktree_path: Path, ref: str, message: str) -> str:
    """A merge commit of `ref` onto the worktree's HEAD (never a fast-forward: one commit to
    revert). When `ref` was branched from code identical to HEAD's (fork_point), its result is
    exactly `ref`'s tree: a three-way merge against that fork point, which git's own merge base
    (an older common ancestor) would report as conflicts wherever both sides carry the same
    earlier change next to the change set's."""
    if fork_point(worktree_path, ref, "HEAD"):
        tree = git(worktree_path, "rev-parse", f"{ref}^{{tree}}")
        commit = git(worktree_path, "commit-tree", tree, "-p", "HEAD", "-p", ref, "-m", message)
        git(worktree_path, "merge", "--ff-only", "-q", commit)
        return head(worktree_path)
    git(worktree_path, "merge", "--no-ff", "--no-edit", "-m", message, ref)
    return head(worktree_path)


def changed_files(repo: Path, old: str, new: str) -> list[str]:
    return git(repo, "diff", "--name-only", old, new).splitlines()
