"""Serving settings: the two schedules (cron strings in a time zone), from env or CLI."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runbook.errors import RunbookError

DEFAULT_VERIFY_CRON = "0 2 * * *"       # nightly
DEFAULT_STANDUP_CRON = "0 9 * * 1-5"    # weekday mornings


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNBOOK_", env_file=".env", extra="ignore")

    verify_cron: str = DEFAULT_VERIFY_CRON
    standup_cron: str = DEFAULT_STANDUP_CRON
    schedule_timezone: str = "UTC"

    @field_validator("verify_cron", "standup_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        # Prefect's own check, so what passes here is what the server accepts
        from prefect._internal.schemas.validators import validate_cron_string

        return validate_cron_string(v.strip())

    @field_validator("schedule_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    def cron_for(self, schedule: str) -> str:
        return {"verify": self.verify_cron, "standup": self.standup_cron}[schedule]


def load_serve_settings(**overrides: str | None) -> ServeSettings:
    """Env (RUNBOOK_VERIFY_CRON, RUNBOOK_STANDUP_CRON, RUNBOOK_SCHEDULE_TIMEZONE) overridden by
    the non-None keyword arguments (CLI options); one clear line when a value is invalid."""
    try:
        return ServeSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "RUNBOOK_" + str(err["loc"][0]).upper() if err["loc"] else "serve settings"
        raise RunbookError(f"setting {name} is invalid: {err['msg'].removeprefix('Value error, ')}") from None
