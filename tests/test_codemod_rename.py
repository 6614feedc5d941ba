"""rename / find_old_names against real git repositories in tmp_path."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from runbook.errors import RunbookError
from runbook.tasks.code.rename import find_old_names, parse_map, rename

MAP = {"qty_open": "quantity_open", "qty_original": "quantity_original"}


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def make_repo(root: Path, files: dict[str, bytes]) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "core.autocrlf", "false")
    for rel, data in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo


def snapshot(repo: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(repo.rglob("*")):
        if ".git" in p.relative_to(repo).parts or p.is_dir() or p.is_symlink():
            continue
        out[p.relative_to(repo).as_posix()] = p.read_bytes()
    return out


# --------------------------------------------------------------------------- boundary rule

BOUNDARY_SRC = b"""\
qty_open
total_qty_open
new_qty_open
qty_open_sum
qty_opened_at
xqty_open
qty_open2
Qty_Open
t.qty_open,qty_open)
x = row["qty_open"]
qty_original qty_originals
"""

BOUNDARY_OUT = b"""\
quantity_open
total_quantity_open
new_quantity_open
quantity_open_sum
qty_opened_at
xqty_open
qty_open2
Qty_Open
t.quantity_open,quantity_open)
x = row["quantity_open"]
quantity_original qty_originals
"""


def test_boundary_rule(tmp_path):
    repo = make_repo(tmp_path, {"a.py": BOUNDARY_SRC})
    report = rename(repo, MAP)
    assert (repo / "a.py").read_bytes() == BOUNDARY_OUT
    assert report.total == 8
    assert report.counts_table() == [("a.py", 8)]
    near = {(o.line, o.column, o.name) for o in report.near_misses}
    assert near == {(5, 1, "qty_open"), (6, 2, "qty_open"), (7, 1, "qty_open"),
                    (11, 14, "qty_original")}


def test_text_at_start_and_end_without_newline(tmp_path):
    repo = make_repo(tmp_path, {"a.txt": b"qty_open"})
    report = rename(repo, MAP)
    assert (repo / "a.txt").read_bytes() == b"quantity_open"
    assert report.total == 1
    assert "\\ No newline at end of file" in report.diff()


def test_longest_old_wins(tmp_path):
    repo = make_repo(tmp_path, {"a.sql": b"select qty_open_total, qty_open from t\n"})
    rename(repo, {"qty_open": "quantity_open", "qty_open_total": "total_open_quantity"})
    assert (repo / "a.sql").read_bytes() == b"select total_open_quantity, quantity_open from t\n"


# --------------------------------------------------------------------------- bytes preserved

def test_crlf_and_latin1_preserved_byte_exact(tmp_path):
    latin = "-- café qty_open résumé\r\nSELECT qty_open, qty_opened_at FROM lots; -- ü\r\n"
    data = latin.encode("latin-1")
    utf8 = "# naïve qty_open ✓ xqty_open\r\n".encode()
    bom = b"\xef\xbb\xbfqty_open\n"
    repo = make_repo(tmp_path, {"q.sql": data, "u.py": utf8, "bom.txt": bom})
    report = rename(repo, MAP)
    assert (repo / "q.sql").read_bytes() == data.replace(b"qty_open,", b"quantity_open,") \
        .replace(b"caf\xe9 qty_open", b"caf\xe9 quantity_open")
    assert (repo / "q.sql").read_bytes().count(b"\r\n") == 2
    assert b"\xe9" in (repo / "q.sql").read_bytes()
    assert (repo / "u.py").read_bytes() == "# naïve quantity_open ✓ xqty_open\r\n".encode()
    assert (repo / "bom.txt").read_bytes() == b"\xef\xbb\xbfquantity_open\n"
    assert dict(report.counts_table()) == {"q.sql": 2, "u.py": 1, "bom.txt": 1}
    # occurrences are reported as decoded text with character columns
    near = [o for o in report.near_misses if o.path == "q.sql"]
    assert len(near) == 1 and near[0].line == 2 and near[0].column == 18
    assert near[0].text == "SELECT qty_open, qty_opened_at FROM lots; -- ü"
    (u,) = [o for o in report.near_misses if o.path == "u.py"]
    assert (u.line, u.column, u.text) == (1, 21, "# naïve qty_open ✓ xqty_open")


def test_binary_file_untouched_and_listed(tmp_path):
    blob = b"\x89PNG\r\n\x1a\n\x00\x00qty_open\x00" * 10
    repo = make_repo(tmp_path, {"img.png": blob, "other.bin": b"\x00\x01\x02",
                                "a.txt": b"qty_open\n"})
    report = rename(repo, MAP)
    assert (repo / "img.png").read_bytes() == blob
    assert report.skipped_binary == ["img.png"]
    assert report.counts_table() == [("a.txt", 1)]


def test_undecodable_file_is_skipped_as_binary(tmp_path):
    # 0x81/0x8d are neither UTF-8 nor CP-1252: could be Shift-JIS etc., editing bytes is unsafe
    data = b"\x81\x8d qty_open\n"
    repo = make_repo(tmp_path, {"sjis.txt": data})
    report = rename(repo, MAP)
    assert (repo / "sjis.txt").read_bytes() == data
    assert report.skipped_binary == ["sjis.txt"] and report.total == 0


def test_symlink_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"qty_open\n")
    repo = make_repo(tmp_path, {"a.txt": b"qty_open\n"})
    (repo / "link.txt").symlink_to(outside)
    (repo / "inner_link.txt").symlink_to("a.txt")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "links")
    report = rename(repo, MAP)
    assert outside.read_bytes() == b"qty_open\n"
    assert os.readlink(repo / "link.txt") == str(outside)
    assert (repo / "link.txt").is_symlink() and (repo / "inner_link.txt").is_symlink()
    assert sorted(report.skipped_symlinks) == ["inner_link.txt", "link.txt"]
    assert report.counts_table() == [("a.txt", 1)]
    found, _ = find_old_names(repo, ["qty_open"])
    assert found == []


def test_executable_mode_kept(tmp_path):
    repo = make_repo(tmp_path, {"run.sh": b"#!/bin/sh\necho $qty_open\n"})
    (repo / "run.sh").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "x")
    ino = os.stat(repo / "run.sh").st_ino
    rename(repo, MAP)
    st = os.stat(repo / "run.sh")
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_ino == ino
    assert (repo / "run.sh").read_bytes() == b"#!/bin/sh\necho $quantity_open\n"


# --------------------------------------------------------------------------- which files

def test_excluded_glob_untouched(tmp_path):
    files = {"backend/db/migrations/0001_init.sql": b"create table t (qty_open int);\n",
             "backend/db/migrations/README.md": b"qty_open\n",
             "backend/app.py": b"qty_open = 1\n",
             "vendor/lib/x.py": b"qty_open\n"}
    repo = make_repo(tmp_path, files)
    report = rename(repo, MAP, exclude=["backend/db/migrations/0*", "vendor"])
    assert (repo / "backend/db/migrations/0001_init.sql").read_bytes() == files[
        "backend/db/migrations/0001_init.sql"]
    assert (repo / "vendor/lib/x.py").read_bytes() == b"qty_open\n"
    assert dict(report.counts_table()) == {"backend/db/migrations/README.md": 1,
                                           "backend/app.py": 1}
    found, _ = find_old_names(repo, ["qty_open"], exclude=["backend/db/migrations/0*", "vendor"])
    assert found == []
    found, _ = find_old_names(repo, ["qty_open"])
    assert {o.path for o in found} == {"backend/db/migrations/0001_init.sql", "vendor/lib/x.py"}


def test_untracked_ignored_and_git_dir_untouched(tmp_path):
    repo = make_repo(tmp_path, {".gitignore": b"build/\n", "a.txt": b"qty_open\n"})
    (repo / "build").mkdir()
    (repo / "build" / "junk.txt").write_bytes(b"qty_open\n")
    git(repo, "config", "user.note", "qty_open")     # .git/config now contains qty_open
    config = (repo / ".git" / "config").read_bytes()
    assert b"qty_open" in config
    report = rename(repo, MAP)
    assert (repo / "build" / "junk.txt").read_bytes() == b"qty_open\n"
    assert (repo / ".git" / "config").read_bytes() == config
    assert report.counts_table() == [("a.txt", 1)]


def test_dirty_tree_refused_nothing_changed(tmp_path):
    repo = make_repo(tmp_path, {"a.txt": b"qty_open\n", "b.txt": b"qty_open\n"})
    (repo / "b.txt").write_bytes(b"qty_open edited\n")
    (repo / "new.txt").write_bytes(b"qty_open\n")
    before = snapshot(repo)
    with pytest.raises(RunbookError) as e:
        rename(repo, MAP)
    assert "b.txt" in str(e.value) and "new.txt" in str(e.value)
    assert snapshot(repo) == before
    with pytest.raises(RunbookError):
        rename(repo, MAP, dry_run=True)


def test_not_a_work_tree(tmp_path):
    with pytest.raises(RunbookError, match="does not exist"):
        rename(tmp_path / "missing", MAP)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunbookError, match="not a git work tree"):
        rename(tmp_path / "plain", MAP)
    with pytest.raises(RunbookError, match="not a git work tree"):
        find_old_names(tmp_path / "plain", ["qty_open"])
    repo = make_repo(tmp_path, {"a.txt": b"qty_open\n"})
    with pytest.raises(RunbookError, match="not a git work tree"):   # inside .git: no work tree
        rename(repo / ".git", MAP)
    assert (repo / "a.txt").read_bytes() == b"qty_open\n"


# --------------------------------------------------------------------------- runs

def test_idempotent(tmp_path):
    repo = make_repo(tmp_path, {"a.py": BOUNDARY_SRC, "b.sql": b"qty_original AS orig\n"})
    first = rename(repo, MAP)
    assert first.total > 0
    git(repo, "commit", "-qam", "renamed")
    after_first = snapshot(repo)
    second = rename(repo, MAP)
    assert second.total == 0 and second.changes == [] and second.diff() == ""
    assert snapshot(repo) == after_first


def test_dry_run_writes_nothing_and_diff_has_lines(tmp_path):
    repo = make_repo(tmp_path, {"a.py": b"x = 1\ntotal_qty_open = 2\ny = 3\n",
                                "b.sql": b"select qty_original from t;\r\n"})
    before = snapshot(repo)
    report = rename(repo, MAP, dry_run=True)
    assert snapshot(repo) == before
    assert git(repo, "status", "--porcelain") == ""
    diff = report.diff()
    assert "--- a/a.py\n+++ b/a.py\n" in diff
    assert "-total_qty_open = 2\n" in diff and "+total_quantity_open = 2\n" in diff
    assert " x = 1\n" in diff
    assert "-select qty_original from t;\r\n" in diff
    assert "+select quantity_original from t;\r\n" in diff
    assert report.counts_table() == [("a.py", 1), ("b.sql", 1)] and report.total == 2
    # the real run produces exactly what the dry run predicted
    real = rename(repo, MAP)
    assert real.diff() == diff
    assert snapshot(repo)["a.py"] == b"x = 1\ntotal_quantity_open = 2\ny = 3\n"


def test_aliases_listed_before_renaming(tmp_path):
    sql = (b"SELECT l.qty_open AS qty,\n"
           b"       qty_original as orig_qty,\n"
           b"       qty_open AS quantity_open,\n"       # alias already the new name: fine
           b"       qty_open\n"
           b"         As \"open\"\n"
           b"FROM lots l\n")
    repo = make_repo(tmp_path, {"v.sql": sql, "m.py": b"from x import qty_open as qo\n"})
    report = rename(repo, MAP)
    got = sorted((o.path, o.line, o.column, o.name) for o in report.aliases)
    assert got == [("m.py", 1, 15, "qty_open"), ("v.sql", 1, 10, "qty_open"),
                   ("v.sql", 2, 8, "qty_original"), ("v.sql", 4, 8, "qty_open")]
    assert report.aliases[0].text in ("SELECT l.qty_open AS qty,", "from x import qty_open as qo")
    assert (repo / "v.sql").read_bytes().startswith(b"SELECT l.quantity_open AS qty,\n")


def test_non_idempotent_mapping_refused(tmp_path):
    repo = make_repo(tmp_path, {"a.txt": b"qty\n"})
    with pytest.raises(RunbookError, match="second run"):
        rename(repo, {"qty": "qty_total"})
    assert (repo / "a.txt").read_bytes() == b"qty\n"


@pytest.mark.parametrize("mapping, text", [
    ({"a": "b", "b_c": "d"}, b"a_c"),                       # a_c -> b_c -> d
    ({"a": "b", "c_b": "d"}, b"c_a"),                       # left edge
    ({"b": "x", "a_x_c": "d"}, b"a_b_c"),                   # both edges
    ({"qty_open": "quantity_open", "open_date": "opened_on"}, b"qty_open_date"),
])
def test_overlap_across_underscore_refused_per_file(tmp_path, mapping, text):
    repo = make_repo(tmp_path, {"a.txt": ("fine " + " ".join(mapping) + "\n").encode(),
                                "z.txt": b"line1\n" + text + b"\n"})
    before = snapshot(repo)
    with pytest.raises(RunbookError, match=r"not idempotent on z\.txt:2"):
        rename(repo, mapping)
    assert snapshot(repo) == before
    # the same mapping is fine on text without the overlap, and then idempotent
    (repo / "z.txt").unlink()
    git(repo, "commit", "-qam", "rm")
    assert rename(repo, mapping).total == len(mapping)
    git(repo, "commit", "-qam", "renamed")
    assert rename(repo, mapping).total == 0


# --------------------------------------------------------------------------- parse_map

def test_parse_map_ok():
    assert parse_map(["qty_open=quantity_open", " qty_original = quantity_original "]) == MAP
    # NEW containing OLD only as a non-boundary substring is fine: qty_opened stays qty_opened
    assert parse_map(["open=opened"]) == {"open": "opened"}
    assert parse_map(["qty_open=quantity_open", "qty=quantity_x"])["qty"] == "quantity_x"
    # overlaps that depend on the text are left to rename()'s per-file check
    assert parse_map(["a=b", "b_c=d"]) == {"a": "b", "b_c": "d"}


@pytest.mark.parametrize("items, match", [
    ([], "no renames"),
    (["qty_open"], "exactly one '='"),
    (["a=b=c"], "exactly one '='"),
    (["=quantity_open"], "empty"),
    (["qty_open="], "empty"),
    (["qty open=x"], "not an identifier"),
    (["qty_open=quantity-open"], "not an identifier"),
    (["qty_open=qty_open"], "identical"),
    (["qty_open=a", "qty_open=b"], "given twice"),
    (["qty=qty_total"], "second run"),                  # NEW contains OLD at a boundary
    (["qty=total_qty"], "second run"),
    (["a=b", "b=c"], "second run"),                     # chain
])
def test_parse_map_errors(items, match):
    with pytest.raises(RunbookError, match=match):
        parse_map(items)


# --------------------------------------------------------------------------- gate

def test_find_old_names_after_rename(tmp_path):
    repo = make_repo(tmp_path, {"a.py": BOUNDARY_SRC,
                                "b.sql": b"select qty_opened_at, qty_open from lots\n"})
    found, near = find_old_names(repo, ["qty_open", "qty_original"])
    assert len(found) == 9
    assert ("b.sql", 1, 23) in {(o.path, o.line, o.column) for o in found}
    rename(repo, MAP)
    found, near = find_old_names(repo, ["qty_open", "qty_original"])
    assert found == []
    texts = {(o.path, o.text) for o in near}
    assert ("a.py", "qty_opened_at") in texts
    assert ("b.sql", "select qty_opened_at, quantity_open from lots") in texts
    assert {o.name for o in near} == {"qty_open", "qty_original"}


def test_find_old_names_rejects_bad_names(tmp_path):
    repo = make_repo(tmp_path, {"a.txt": b"x\n"})
    with pytest.raises(RunbookError):
        find_old_names(repo, [])
    with pytest.raises(RunbookError):
        find_old_names(repo, ["not a name"])
