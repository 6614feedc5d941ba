"""What a flow run acts on, resolved once from settings and parameters."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from runbook.errors import RunbookError
from runbook.parameters import BatchSize, LockTimeoutMs, SessionTimeoutMs, check
from runbook.pg import connect, database_name, with_database
from runbook.plan import ENVIRONMENTS, Environment
from runbook.redaction import REDACTED, mask_url_password
from runbook.settings import Settings, get_settings
from runbook.targets import find_target, load_targets


@dataclass
class RunContext:
    flow_name: str
    environment: Environment
    database_url: str
    rehearsal_server_url: str        # server on which the staging rehearsal's scratch DB lives
    repo: Path                       # TARGET_REPO: the source checkout (its HEAD never moves)
    workspace: Path
    backup_dir: Path
    flow_run_id: str
    staging_url: str | None = None   # STAGING_DATABASE_URL: production applies only what staging has
    api_url: str | None = None       # external API; None = the runbook manages one per env
    upstream_url: str | None = None  # TARGET_UPSTREAM_URL: the stand-in an external API calls
    redis_url: str | None = field(default=None, metadata={"secret": True})   # REDIS_URL (may hold a password)
    api_token: str | None = field(default=None, metadata={"secret": True})
    jwt_secret: str | None = field(default=None, metadata={"secret": True})   # TARGET_JWT_SECRET
    deploy_cmd: str | None = field(default=None, metadata={"secret": True})   # TARGET_DEPLOY_CMD
    dry_run: bool = False
    batch_size: int = 2000
    lock_timeout_ms: int = 2000
    statement_timeout_ms: int = 600_000
    idle_in_transaction_timeout_ms: int = 60_000
    accept_trigger_effects: tuple[str, ...] = ()   # user triggers a backfill may fire (by name)
    extra: dict = field(default_factory=dict)
    target: str = ""                 # the fleet target's name (targets.toml); "" outside a fleet
    parameters: dict = field(default_factory=dict)   # the flow's own parameters beyond the common ones

    def __repr__(self) -> str:
        """Secrets never shown; URLs without their passwords; `extra` by its keys only."""
        def shown(f):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                return REDACTED if value else None
            if f.name == "extra":
                return sorted(value)
            return mask_url_password(value) if isinstance(value, str) else value
        return f"RunContext({', '.join(f'{f.name}={shown(f)!r}' for f in fields(self))})"

    __str__ = __repr__

    @property
    def slot(self) -> str:
        """What owns a deploy worktree, API and branch: the fleet target, else the environment."""
        return self.target or self.environment

    @property
    def deploy_dir(self) -> Path:
        """The checkout this environment's API runs (a git worktree of TARGET_REPO)."""
        return self.workspace / "deploy" / self.slot

    @property
    def branch(self) -> str:
        return "runbook/refactor"

    @property
    def rehearsal_db(self) -> str:
        # the run id first: two environments whose databases share a name (staging and
        # production both `dawsos`) rehearse on one server at once without meeting
        run = "".join(c for c in self.flow_run_id if c.isalnum())[:12] or "norun"
        return f"rb_rehearsal_{run}_{database_name(self.database_url)}"[:63]


def database_for(environment: Environment, settings: Settings) -> str:
    if environment == "production":
        if not settings.database_url:
            raise RunbookError("setting DATABASE_URL is not set (needed for a production run)")
        return settings.database_url.get_secret_value()
    if settings.staging_database_url:
        return settings.staging_database_url.get_secret_value()
    raise RunbookError("setting STAGING_DATABASE_URL is not set (needed for a staging run)")


def build_context(flow_name: str, environment: str, flow_run_id: str, *, dry_run: bool = False,
                  batch_size: int = 2000, lock_timeout_ms: int = 2000,
                  statement_timeout_ms: int = 600_000, idle_in_transaction_timeout_ms: int = 60_000,
                  accept_trigger_effects: list[str] | tuple[str, ...] | None = None,
                  settings: Settings | None = None, target: str | None = None) -> RunContext:
    if environment not in ENVIRONMENTS:
        raise RunbookError(f"parameter environment must be 'staging' or 'production', not {environment!r}")
    for name, kind, value in (("batch_size", BatchSize, batch_size), ("lock_timeout_ms", LockTimeoutMs, lock_timeout_ms),
                              ("statement_timeout_ms", SessionTimeoutMs, statement_timeout_ms),
                              ("idle_in_transaction_timeout_ms", SessionTimeoutMs, idle_in_transaction_timeout_ms)):
        check(name, kind, value)
    s = settings or get_settings()
    if target:
        fleet = load_targets(s.runbook_targets)
        member = find_target(fleet, target)
        if member.environment != environment:
            raise RunbookError(f"target {member.name} is {member.role}: run it with environment={member.environment}")
        url, setting = member.database_url(), member.database_url_env
        staging = next(t for t in fleet if t.role == "staging").database_url()
        repo_setting, api_url = member.repo or s.target_repo, member.api_url()
    else:
        url = database_for(environment, s)  # type: ignore[arg-type]
        setting = "DATABASE_URL" if environment == "production" else "STAGING_DATABASE_URL"
        staging = s.staging_database_url.get_secret_value() if s.staging_database_url else None
        repo_setting, api_url = s.target_repo, s.target_api_url
    connect(url, setting=setting).close()
    rehearsal_server = with_database(staging if (staging and environment == "production") else url, "postgres")
    if not repo_setting:
        raise RunbookError("setting TARGET_REPO is not set (the DawsOS backend checkout)")
    repo = Path(repo_setting).resolve()
    if not (repo / ".git").exists():
        raise RunbookError(f"setting TARGET_REPO: {repo} is not a git checkout")
    return RunContext(
        flow_name=flow_name, environment=environment, database_url=url,  # type: ignore[arg-type]
        rehearsal_server_url=rehearsal_server, repo=repo,
        workspace=Path(s.runbook_workspace).resolve(), backup_dir=Path(s.backup_dir).resolve(),
        flow_run_id=flow_run_id, staging_url=staging, api_url=api_url, target=target or "",
        upstream_url=s.target_upstream_url,
        redis_url=s.redis_url.get_secret_value() if s.redis_url else None,
        api_token=s.target_api_token.get_secret_value() if s.target_api_token else None,
        jwt_secret=s.target_jwt_secret.get_secret_value() if s.target_jwt_secret else None,
        deploy_cmd=s.target_deploy_cmd.get_secret_value() if s.target_deploy_cmd else None,
        dry_run=dry_run, batch_size=batch_size, lock_timeout_ms=lock_timeout_ms,
        statement_timeout_ms=statement_timeout_ms,
        idle_in_transaction_timeout_ms=idle_in_transaction_timeout_ms,
        accept_trigger_effects=tuple(accept_trigger_effects or ()))
