"""The fleet: every database the plan rolls out to, beyond one staging and one production.

One TOML file (`RUNBOOK_TARGETS`, default `./targets.toml`), a table per target:

    [[target]]
    name = "eu-staging"
    role = "staging"                      # staging | canary | production
    database_url_env = "EU_STAGING_DATABASE_URL"   # the URL itself never sits in the file
    repo = "/srv/dawsos"                  # optional: TARGET_REPO for this target
    api_url_env = "EU_STAGING_API_URL"    # optional: a running API (else the runbook starts one)

A rollout goes staging targets first, then one canary, then the rest.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from runbook.errors import RunbookError

Role = Literal["staging", "canary", "production"]
ROLES: tuple[str, ...] = get_args(Role)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
FIELDS = {"name", "role", "database_url_env", "repo", "api_url_env"}


@dataclass(frozen=True)
class FleetTarget:
    name: str
    role: Role
    database_url_env: str
    repo: Path | None = None
    api_url_env: str | None = None

    @property
    def environment(self) -> str:
        """What the plan's flows call it: a canary is production that goes first."""
        return "staging" if self.role == "staging" else "production"

    def database_url(self) -> str:
        url = os.environ.get(self.database_url_env)
        if not url:
            raise RunbookError(f"target {self.name}: environment variable {self.database_url_env} "
                               "(its database URL) is not set")
        return url

    def api_url(self) -> str | None:
        return os.environ.get(self.api_url_env) if self.api_url_env else None


def load_targets(path: Path) -> list[FleetTarget]:
    """The fleet from `path`; any problem is one error naming the file, target and key."""
    if not path.is_file():
        raise RunbookError(f"targets file {path} not found (setting RUNBOOK_TARGETS)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RunbookError(f"targets file {path}: not valid TOML ({exc})") from None
    entries = raw.get("target")
    if not isinstance(entries, list) or not entries:
        raise RunbookError(f"targets file {path}: no [[target]] tables")
    fleet: list[FleetTarget] = []
    for i, entry in enumerate(entries, 1):
        where = f"targets file {path}, target {entry.get('name') or f'#{i}'}"
        unknown = set(entry) - FIELDS
        if unknown:
            raise RunbookError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("name", "role", "database_url_env"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise RunbookError(f"{where}: key {key} is missing")
        if not _NAME.match(entry["name"]):
            raise RunbookError(f"{where}: name must be lowercase letters, digits and '-' (at most 40)")
        if entry["role"] not in ROLES:
            raise RunbookError(f"{where}: role must be one of {', '.join(ROLES)}, not {entry['role']!r}")
        for key in ("database_url_env", "api_url_env"):
            if key in entry and not _ENV_VAR.match(str(entry[key])):
                raise RunbookError(f"{where}: {key} must name an environment variable, e.g. PROD_EU_DATABASE_URL")
        fleet.append(FleetTarget(entry["name"], entry["role"], entry["database_url_env"],
                                 Path(entry["repo"]).expanduser() if entry.get("repo") else None,
                                 entry.get("api_url_env")))
    names = [t.name for t in fleet]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RunbookError(f"targets file {path}: target name(s) used twice: {', '.join(dupes)}")
    if not any(t.role == "staging" for t in fleet):
        raise RunbookError(f"targets file {path}: no target with role staging (a rollout starts there)")
    return fleet


def find_target(fleet: list[FleetTarget], name: str) -> FleetTarget:
    for t in fleet:
        if t.name == name:
            return t
    raise RunbookError(f"unknown target {name!r}; the fleet has: {', '.join(t.name for t in fleet)}")


def rollout_waves(fleet: list[FleetTarget]) -> list[list[FleetTarget]]:
    """Staging targets (one at a time), then one canary (the first canary, or the first
    production target when none is marked), then the rest together."""
    staging = [t for t in fleet if t.role == "staging"]
    later = [t for t in fleet if t.role != "staging"]
    canary = next((t for t in later if t.role == "canary"), later[0] if later else None)
    rest = [t for t in later if t is not canary]
    return [*([t] for t in staging), *([[canary]] if canary else []), *([rest] if rest else [])]
