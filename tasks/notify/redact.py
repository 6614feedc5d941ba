"""Redaction: every text that is logged or sent passes through it, with the configured secret
values (Slack token and webhook URL, database and API credentials) and with patterns for
credentials in URLs (``postgresql://user:***@``), Slack tokens, webhook URLs and bearer tokens."""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from runbook.redaction import mask_url_password
from runbook.settings import Settings

ELLIPSIS = "…"
REDACTED = "***"



_MIN_SECRET_LEN = 4          # shorter configured values would garble ordinary text



# a signed JWT (header.payload.signature, base64url; headers start with {"  -> eyJ)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]+")



_SLACK_TOKEN = re.compile(r"\b(?P<kind>xox[abposr]|xapp|xoxe(?:\.xox[bp])?)-[A-Za-z0-9\-]+")



_SLACK_WEBHOOK = re.compile(
    r"(?P<base>https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)[^\s\"'<>]+")



_BEARER = re.compile(r"(?i)\b(?P<kind>bearer)(?P<sep>\s+)(?P<value>[A-Za-z0-9._~+/\-]{8,}=*)")



def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return `text` with every secret removed.

    Removes each value in `secrets` (and its URL-encoded form), a secret cut off by a truncation
    (``abcd…``), credentials in URLs (``postgresql://user:pass@`` -> ``postgresql://user:***@``),
    Slack tokens (``xoxb-…``), Slack webhook URLs and bearer tokens.
    """
    if not text:
        return text
    if not isinstance(text, str):
        text = str(text)
    values = expand_secrets(secrets)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    if ELLIPSIS in text:
        # a secret truncated by a length limit: its prefix right before the ellipsis
        for value in values:
            for k in range(len(value) - 1, _MIN_SECRET_LEN - 1, -1):
                fragment = value[:k] + ELLIPSIS
                if fragment in text:
                    text = text.replace(fragment, REDACTED + ELLIPSIS)
    text = mask_url_password(text)       # user:pw@, ?password=, password= in a DSN
    text = _JWT.sub(REDACTED, text)
    text = _SLACK_TOKEN.sub(lambda m: f"{m['kind']}-{REDACTED}", text)
    text = _SLACK_WEBHOOK.sub(lambda m: f"{m['base']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m['kind']}{m['sep']}{REDACTED}", text)
    return text



def expand_secrets(secrets: Iterable[str | None]) -> list[str]:
    out: set[str] = set()
    for s in secrets or ():
        if s is None:
            continue
        if hasattr(s, "get_secret_value"):
            s = s.get_secret_value()
        s = str(s)
        if len(s) < _MIN_SECRET_LEN:
            continue
        out.add(s)
        for variant in (quote(s, safe=""), quote(s), unquote(s), json.dumps(s)[1:-1]):
            if len(variant) >= _MIN_SECRET_LEN:
                out.add(variant)
    return sorted(out, key=len, reverse=True)      # longest first: no partial leftovers



def secrets_from_settings(settings: Settings | None) -> list[str]:
    """The secret values configured in `settings`, plus the parts of them that are secret alone
    (the path of the webhook URL, the password of a database URL)."""
    if settings is None:
        return []
    out: list[str] = []

    def val(name: str) -> str | None:
        v = getattr(settings, name, None)
        if v is None:
            return None
        return v.get_secret_value() if hasattr(v, "get_secret_value") else str(v)

    for name in ("slack_bot_token", "target_api_token", "target_jwt_secret", "target_deploy_cmd"):
        if v := val(name):
            out.append(v)
    if hook := val("slack_webhook_url"):
        out.append(hook)
        try:
            parts = urlsplit(hook)
            if len(parts.path.strip("/")) >= 8:
                out.append(parts.path.strip("/"))
            segments = [p for p in parts.path.split("/") if p]
            if segments and len(segments[-1]) >= 8:
                out.append(segments[-1])
            if parts.query:
                out.append(parts.query)
        except ValueError:
            pass
    for name in ("database_url", "staging_database_url"):
        if url := val(name):
            # the password alone: the URL keeps its user/host (useful) and the credentials
            # pattern turns it into postgresql://user:***@host
            out += [pw for pw in url_passwords(url) for pw in (pw, unquote(pw))]
    return out



def url_passwords(url: str) -> list[str]:
    """Every password a connection string carries: user:pw@ and ?password= / sslpassword=."""
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in ("password", "sslpassword") and v]
    except ValueError:
        return []
    return found


def configured_secrets() -> list[str]:
    """The configured secrets, for texts that leave the run (artifacts); none if settings fail."""
    try:
        from runbook.settings import get_settings
        return expand_secrets(secrets_from_settings(get_settings()))
    except Exception:  # noqa: BLE001 - the patterns still apply
        return []


def scrub(obj: Any, secrets: list[str]) -> Any:
    """Redact every string inside a JSON-like structure."""
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {k: scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v, secrets) for v in obj]
    return obj



class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            msg = str(record.msg)
        record.msg = redact(msg, self.secrets)
        record.args = None
        if record.exc_info:
            # the traceback text may carry secrets: keep only a redacted one-line summary
            exc = record.exc_info[1]
            record.msg += f" [{type(exc).__name__}: {redact(str(exc), self.secrets)}]"
            record.exc_info = None
            record.exc_text = None
        return True





RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")   # what Prefect sends to the run's logs


class RunLogRedaction(logging.Filter):
    """Redacts every record of the run loggers with the configured secrets, traceback included
    (kept, unlike RedactingFilter: a run's log must still show where it failed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = configured_secrets()
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            msg = str(record.msg)
        record.msg, record.args = redact(msg, secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True


def install_run_log_redaction() -> None:
    """Once per process: the run loggers redact before any handler (the Prefect API) sees a record."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RunLogRedaction) for f in logger.filters):
            logger.addFilter(RunLogRedaction())
