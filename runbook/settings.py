"""Runbook settings: environment variables and `.env`, validated once.

Secrets are SecretStr so that a repr, a log line or an artifact never shows them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runbook.errors import RunbookError
from runbook.redaction import mask_url_password


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: SecretStr | None = Field(None, description="production target database")
    staging_database_url: SecretStr | None = Field(
        None, description="staging database; a scratch database on the target server if unset")
    target_repo: Path | None = Field(None, description="checkout of the DawsOS backend repo")
    target_api_url: str | None = Field(None, description="base URL of the running DawsOS API")
    target_api_token: SecretStr | None = None
    target_jwt_secret: SecretStr | None = Field(
        None, description="the target API's JWT signing secret (its AUTH_JWT_SECRET): the runbook "
                          "signs its own calls and the authorization gate's probe tokens with it")
    target_deploy_cmd: SecretStr | None = Field(
        None, description="with TARGET_API_URL: command that deploys a commit to the running service "
                          "(given the commit as its last argument and as DEPLOY_COMMIT)")
    target_upstream_url: str | None = Field(
        None, description="with TARGET_API_URL: the upstream stand-in (runbook upstream) the target's "
                          "provider base URLs point at while the Week 3-4 gates run")
    redis_url: SecretStr | None = Field(
        None, description="the Redis a managed API caches pattern results in (its REDIS_URL, Week 4); "
                          "unset: a redis-server the runbook starts in its workspace for the run")
    slack_webhook_url: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None
    backup_dir: Path = Path("./.runbook-backups")
    runbook_workspace: Path = Path("./.runbook-demo")
    runbook_targets: Path = Field(Path("./targets.toml"), description="the fleet (see runbook/targets.py)")
    prefect_ui_url: str | None = Field(None, description="base URL of the Prefect UI for run links")
    restore_app_writes_sql: str | None = Field(
        None, description="SQL listing (table, key) of the rows the application wrote since %(since)s "
        "(its write or audit log): restore proofs then require every other row unchanged")
    slack_sample_full_rows: bool = Field(
        False, description="alerts carry whole sample rows (customer data); default: keys and the "
                           "mismatching columns only")

    def __repr_args__(self):
        # URLs may carry credentials (https://user:pw@host): never shown
        for name, value in super().__repr_args__():
            yield name, mask_url_password(value) if isinstance(value, str) else value

    @field_validator("database_url", "staging_database_url")
    @classmethod
    def _postgres_url(cls, v: SecretStr | None, info):
        if v is not None and not v.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return v

    @field_validator("target_api_url", "prefect_ui_url")
    @classmethod
    def _http_url(cls, v: str | None):
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return v.rstrip("/") if v else v


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        # never echo the input: it may be a secret
        raise RunbookError(f"setting {name} is invalid: {err['msg']}") from None
