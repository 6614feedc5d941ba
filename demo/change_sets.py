"""The team's change sets for the demo target (Weeks 3-4), as patch series under
`demo/change_sets/<name>/*.patch`, turned into branches `plan/<name>` of the demo repo.

In real life the team writes Week 3's reliability work on a branch cut from what Weeks 0-1
left deployed. For the demo that code is `plan/weeks0-1`: the template with every plan code
update of the days before applied in plan order (the same transforms the flows run, so its
tree is the tree Weeks 0-1 deploy). Each change set is applied with `git am` on the one before
it, so Week 3 Days 3-4 builds on Days 1-2. The runbook merges a change set against the commit
whose code equals what the environment runs (`git_ops.fork_point`).

Writing or changing a change set (for the project's developers):

    python -m runbook.demo.change_sets prepare /tmp/cs week3-day3-4    # a repo on the set's base
    ... edit, commit in /tmp/cs ...
    python -m runbook.demo.change_sets export /tmp/cs week3-day3-4     # back into demo/change_sets/
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent / "change_sets"
BASE_BRANCH = "plan/weeks0-1"
IDENT = ["-c", "user.name=DawsOS dev", "-c", "user.email=dev@dawsos.invalid"]


@dataclass(frozen=True)
class ChangeSet:
    name: str

    @property
    def branch(self) -> str:
        return f"plan/{self.name}"

    @property
    def patches(self) -> list[Path]:
        return sorted((HERE / self.name).glob("*.patch"))


# in the order they stack (each branch is cut from the one before)
CHANGE_SETS = (ChangeSet("week3-day1-2"), ChangeSet("week3-day3-4"), ChangeSet("week3-day5"),
               ChangeSet("week4-day3-4"))


def by_name(name: str) -> ChangeSet:
    for cs in CHANGE_SETS:
        if cs.name == name:
            return cs
    raise SystemExit(f"no change set {name!r}; one of: {', '.join(c.name for c in CHANGE_SETS)}")


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *IDENT, "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args[:2])} in {repo}: {proc.stderr.strip()[:500]}")
    return proc.stdout.strip()


def plan_code_updates() -> list[tuple[str, object]]:
    """Every plan day's code updates, in plan order (the days carried by change sets have none)."""
    from runbook.plan import PLAN
    return [t for day in PLAN for t in day.load().plan.transforms]


def build_branches(repo: Path, upto: str | None = None) -> dict[str, str]:
    """`plan/weeks0-1` and one branch per change set (those with patches, up to and including
    `upto`) in `repo`, from its `main`. Returns branch -> commit. Existing branches are rebuilt."""
    repo = Path(repo)
    work = Path(tempfile.mkdtemp(prefix="change-sets-"))
    wt = work / "wt"
    try:
        _git(repo, "worktree", "add", "-q", "--detach", str(wt), "main")
        for _name, transform in plan_code_updates():
            transform(wt, False)
        _git(wt, "add", "-A")
        _git(wt, "commit", "-q", "--allow-empty", "-m", "Weeks 0-1 as deployed (the plan's code updates)")
        built = {BASE_BRANCH: _git(wt, "rev-parse", "HEAD")}
        for cs in CHANGE_SETS:
            if not cs.patches:
                break          # not written yet: nothing stacks on it
            _git(wt, "am", "-q", "--committer-date-is-author-date", *map(str, cs.patches))
            built[cs.branch] = _git(wt, "rev-parse", "HEAD")
            if cs.name == upto:
                break
        for branch, commit in built.items():
            _git(repo, "branch", "-f", branch, commit)
        return built
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(wt)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _base_of(name: str) -> str:
    index = [c.name for c in CHANGE_SETS].index(name)
    return BASE_BRANCH if index == 0 else CHANGE_SETS[index - 1].branch


def prepare(dest: Path, name: str) -> None:
    """A standalone demo repo at `dest` with the branches, checked out on a new branch
    `plan/<name>` cut from the set's base (the set's existing patches applied on it)."""
    from runbook.demo.workspace import TEMPLATE, init_repo
    cs = by_name(name)
    init_repo(TEMPLATE, Path(dest))
    built = build_branches(Path(dest), upto=name)
    base = _base_of(name)
    if base not in built:
        raise SystemExit(f"{base} has no patches yet: write it first")
    _git(Path(dest), "checkout", "-q", "-B", cs.branch, built.get(cs.branch, built[base]))
    print(f"{dest}: on {cs.branch}, base {base} ({built[base][:12]}); commit there, then export")


def export(src: Path, name: str) -> None:
    """The commits of `src`'s HEAD since the set's base, as the set's patch series."""
    cs = by_name(name)
    out = HERE / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _git(Path(src), "format-patch", "-q", "--no-signature", "--zero-commit", "-o", str(out),
         f"{_base_of(name)}..HEAD")
    print(f"{len(cs.patches)} patches in {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runbook.demo.change_sets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["prepare", "export", "build"])
    parser.add_argument("repo", type=Path)
    parser.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    if args.action == "build":
        print("\n".join(f"{b} {c[:12]}" for b, c in build_branches(args.repo, args.name).items()))
    elif not args.name:
        parser.error(f"{args.action} needs a change set name")
    elif args.action == "prepare":
        prepare(args.repo, args.name)
    else:
        export(args.repo, args.name)


if __name__ == "__main__":
    sys.exit(main())
