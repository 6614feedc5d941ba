"""Slack alerts for failed runbook steps.

* `build_alert` turns a failure (gate result, error, what was rolled back, run link) into a
  fallback text plus Slack Block Kit blocks that respect Block Kit's size limits.
* `redact` scrubs secrets; every text that is sent to Slack or logged passes through it, with the
  configured secret values (Slack token and webhook URL, database and API credentials) and with
  patterns for credentials in URLs (``postgresql://user:***@``), Slack tokens and webhook URLs.
* `post_alert` delivers through an incoming webhook (SLACK_WEBHOOK_URL) or the Web API
  (SLACK_BOT_TOKEN + SLACK_CHANNEL; SLACK_API_URL overrides the API base URL), retries
  connection errors, timeouts, 5xx and 429 with exponential backoff inside a bounded time, and
  never raises: a failure to alert must not mask the failure being alerted.
* `notify_failure` combines both; it is a plain function, wrap it in a Prefect @task if wanted.
"""
from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from runbook.gate_result import GateResult
from runbook.settings import Settings, get_settings

logger = logging.getLogger("runbook.notify")

DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks)
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 3000
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3000
MAX_BLOCKS = 50
FALLBACK_TEXT_MAX = 3000

SAMPLE_ROWS_MAX = 5
SAMPLE_COLS_MAX = 8
SAMPLE_CELL_MAX = 40          # a UUID key (36) must survive whole
ROLLED_BACK_MAX = 20

REDACTED = "***"
_MIN_SECRET_LEN = 4          # shorter configured values would garble ordinary text
_ELLIPSIS = "…"

# Retry policy
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 4.0
_RETRYABLE_API_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                         "request_timeout"}


# --------------------------------------------------------------------------------------------
# redaction

_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.\-]*://(?P<user>[^:/@\s]*):)(?P<pw>[^\s/]+)@")
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
    values = _expand_secrets(secrets)
    for value in values:
        if value in text:
            text = text.replace(value, REDACTED)
    if _ELLIPSIS in text:
        # a secret truncated by a length limit: its prefix right before the ellipsis
        for value in values:
            for k in range(len(value) - 1, _MIN_SECRET_LEN - 1, -1):
                fragment = value[:k] + _ELLIPSIS
                if fragment in text:
                    text = text.replace(fragment, REDACTED + _ELLIPSIS)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['prefix']}{REDACTED}@", text)
    text = _SLACK_TOKEN.sub(lambda m: f"{m['kind']}-{REDACTED}", text)
    text = _SLACK_WEBHOOK.sub(lambda m: f"{m['base']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m['kind']}{m['sep']}{REDACTED}", text)
    return text


def _expand_secrets(secrets: Iterable[str | None]) -> list[str]:
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

    for name in ("slack_bot_token", "target_api_token"):
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
            try:
                pw = urlsplit(url).password
            except ValueError:
                pw = None
            if pw:
                out += [pw, unquote(pw)]
    return out


def _scrub(obj: Any, secrets: list[str]) -> Any:
    """Redact every string inside a JSON-like structure."""
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, dict):
        return {k: _scrub(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_scrub(v, secrets) for v in obj]
    return obj


class _RedactingFilter(logging.Filter):
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


def _redacting_logger(secrets: list[str]) -> logging.Logger:
    """A private child of `runbook.notify` that redacts everything logged through it; handed to
    slack_sdk, whose debug lines contain the webhook URL and the request body."""
    # a private instance (not logging.getLogger): the filter holds this call's secrets
    lg = logging.Logger("runbook.notify.slack")  # noqa: LOG001
    lg.parent = logger
    lg.propagate = True
    lg.addFilter(_RedactingFilter(secrets))
    return lg


# --------------------------------------------------------------------------------------------
# message

def _truncate(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + _ELLIPSIS


def _esc(text: Any) -> str:
    """Escape the three characters Slack mrkdwn treats as control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: Any, limit: int) -> str:
    """A mrkdwn code block of at most `limit` characters."""
    body = _esc(text).replace("```", "ʼʼʼ")
    return "```" + _truncate(body, limit - 6) + "```"


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _cell(value: Any) -> str:
    text = "∅" if value is None else str(value)
    text = " ".join(text.split())            # no newlines/tabs inside a table cell
    return _truncate(text, SAMPLE_CELL_MAX)


def sample_table(rows: list[dict], *, max_rows: int = SAMPLE_ROWS_MAX,
                 max_cols: int = SAMPLE_COLS_MAX) -> str:
    """Rows as a fixed-width text table (header, rule, rows), cells truncated."""
    rows = [r if isinstance(r, dict) else {"value": r} for r in rows[:max_rows]]
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    extra = len(cols) - max_cols
    cols = cols[:max_cols]
    grid = [[_cell(c) for c in cols]] + [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(cols))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in grid]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    if extra > 0:
        lines.append(f"(+{extra} more column{'s' if extra > 1 else ''})")
    return "\n".join(lines)


def flow_run_url(flow_run_id: str | None, settings: Settings | None = None) -> str | None:
    """Link to a flow run in the Prefect UI (PREFECT_UI_URL + /runs/flow-run/<id>)."""
    if not flow_run_id:
        return None
    try:
        settings = settings or get_settings()
    except Exception:  # noqa: BLE001
        return None
    if not settings.prefect_ui_url:
        return None
    return f"{settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def build_alert(*, title: str, flow_name: str, environment: str, gate: GateResult | None,
                error: str | None, rolled_back: list[str], run_url: str | None,
                secrets: Iterable[str] = (), now: datetime | None = None,
                ) -> tuple[str, list[dict]]:
    """Build (fallback text, Block Kit blocks) for a failure alert.

    `secrets` are redacted from every input before anything is truncated (URL credentials and
    Slack tokens are always redacted); `post_alert` redacts the configured secrets again.
    """
    secrets = _expand_secrets(secrets)

    def r(value: Any) -> str:
        return redact(_fmt_value(value), secrets)

    now = now or datetime.now(UTC)
    title = r(title) or "Runbook failure"
    flow_name = r(flow_name) or "unknown flow"
    environment = r(environment) or "unknown"
    error = r(error) if error else None
    rolled = [r(x) for x in (rolled_back or [])]
    run_url = r(run_url) if run_url else None

    blocks: list[dict] = [
        {"type": "header",
         "text": {"type": "plain_text", "text": _truncate(f"🚨 {title}", HEADER_MAX), "emoji": True}},
    ]

    # what failed
    lines = [f"*Flow:* `{_esc(_truncate(flow_name, 200))}`  ·  *Environment:* `{_esc(environment)}`"]
    if gate is not None:
        status = "passed" if gate.passed else "failed"
        lines.append(f"*Gate {status}:* `{_esc(_truncate(r(gate.name), 200))}`")
        lines.append(f"*Expectation:* {_esc(_truncate(r(gate.expectation), 1500))}")
    blocks.append({"type": "section",
                   "text": {"type": "mrkdwn", "text": _truncate("\n".join(lines), SECTION_TEXT_MAX)}})

    if gate is not None:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": "*Observed*\n" + _code(r(gate.observed), FIELD_TEXT_MAX - 20)},
            {"type": "mrkdwn", "text": "*Expected*\n" + _code(r(gate.expected), FIELD_TEXT_MAX - 20)},
        ]})
        if gate.sample:
            shown = min(len(gate.sample), SAMPLE_ROWS_MAX)
            head = f"*Sample rows* ({shown} of {len(gate.sample)})\n"
            rows = [{redact(str(k), secrets): None if v is None else redact(str(v), secrets)
                     for k, v in row.items()} if isinstance(row, dict) else r(row)
                    for row in gate.sample[:SAMPLE_ROWS_MAX]]
            table = r(sample_table(rows))
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": head + _code(table, SECTION_TEXT_MAX - len(head))}})

    if error:
        head = "*Error*\n"
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": head + _code(error, SECTION_TEXT_MAX - len(head))}})

    if rolled:
        items = [f"• {_esc(_truncate(x, 200))}" for x in rolled[:ROLLED_BACK_MAX]]
        if len(rolled) > ROLLED_BACK_MAX:
            items.append(f"… and {len(rolled) - ROLLED_BACK_MAX} more")
        text = "*Rolled back*\n" + "\n".join(items)
    else:
        text = "*Rolled back:* nothing"
    blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                               "text": _truncate(text, SECTION_TEXT_MAX)}})

    if run_url and run_url.startswith(("http://", "https://")) and len(run_url) <= BUTTON_URL_MAX:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "action_id": "open_run", "url": run_url, "style": "danger",
            "text": {"type": "plain_text", "text": "Open run in Prefect"[:BUTTON_TEXT_MAX]},
        }]})

    ts = int(now.timestamp())
    iso = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    context = f"env *{_esc(environment)}*  ·  <!date^{ts}^{{date_short_pretty}} {{time_secs}}|{iso}>"
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": _truncate(context, CONTEXT_TEXT_MAX)}]})

    # fallback text: notifications, screen readers, clients without Block Kit
    parts = [f"{title} — {flow_name} ({environment})"]
    if gate is not None:
        parts.append(f"gate {r(gate.name)} {'passed' if gate.passed else 'failed'}: "
                     f"{r(gate.expectation)} (observed {r(gate.observed)}, "
                     f"expected {r(gate.expected)})")
    if error:
        parts.append(f"error: {_truncate(error, 500)}")
    parts.append("rolled back: " + (", ".join(rolled) if rolled else "nothing"))
    if run_url:
        parts.append(f"run: {run_url}")
    text = _truncate("\n".join(parts), FALLBACK_TEXT_MAX)
    return text, _enforce_limits(blocks)


def _enforce_limits(blocks: list[dict]) -> list[dict]:
    """Clamp text lengths to Block Kit's limits (again after redaction) and the block count."""
    blocks = blocks[:MAX_BLOCKS]
    for b in blocks:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        t = b.get("text")
        if isinstance(t, dict) and isinstance(t.get("text"), str):
            t["text"] = _truncate(t["text"], HEADER_MAX if kind == "header" else SECTION_TEXT_MAX)
        for f in b.get("fields") or []:
            if isinstance(f, dict) and isinstance(f.get("text"), str):
                f["text"] = _truncate(f["text"], FIELD_TEXT_MAX)
        if kind == "context":
            for e in b.get("elements") or []:
                if isinstance(e, dict) and isinstance(e.get("text"), str):
                    e["text"] = _truncate(e["text"], CONTEXT_TEXT_MAX)
    return blocks


# --------------------------------------------------------------------------------------------
# delivery

class _Outcome:
    __slots__ = ("detail", "ok", "retry_after", "retryable")

    def __init__(self, ok: bool, retryable: bool = False, retry_after: float | None = None,
                 detail: str = ""):
        self.ok, self.retryable, self.retry_after, self.detail = ok, retryable, retry_after, detail


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    for k, v in dict(headers).items():
        if str(k).lower() == "retry-after":
            v = v[0] if isinstance(v, list) and v else v
            try:
                return max(float(v), 0.0)
            except (TypeError, ValueError):
                return None
    return None


def _classify_status(status: int, body: str, headers: Any) -> _Outcome:
    if 200 <= status < 300:
        return _Outcome(True)
    retryable = status == 429 or status >= 500 or status == 408
    return _Outcome(False, retryable, _retry_after(headers) if status == 429 else None,
                    f"HTTP {status}: {_truncate(str(body or '').strip(), 200)}")


def _classify_exception(exc: BaseException) -> _Outcome:
    retryable = isinstance(exc, (OSError, http.client.HTTPException, json.JSONDecodeError))
    return _Outcome(False, retryable, None, f"{type(exc).__name__}: {_truncate(str(exc), 300)}")


def _send_webhook(url: str, text: str, blocks: list[dict], timeout: float,
                  lg: logging.Logger) -> _Outcome:
    from slack_sdk.webhook import WebhookClient

    client = WebhookClient(url, timeout=timeout, retry_handlers=[], logger=lg)
    resp = client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
    return _classify_status(resp.status_code, resp.body, resp.headers)


def _send_web_api(token: str, channel: str, text: str, blocks: list[dict], timeout: float,
                  lg: logging.Logger) -> _Outcome:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    base_url = os.environ.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
    if not base_url.endswith("/"):
        base_url += "/"
    client = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=[],
                       logger=lg)
    try:
        client.chat_postMessage(channel=channel, text=text, blocks=blocks,
                                unfurl_links=False, unfurl_media=False)
        return _Outcome(True)
    except SlackApiError as exc:
        resp = exc.response
        status = getattr(resp, "status_code", 0) or 0
        data = getattr(resp, "data", None)
        err = data.get("error") if isinstance(data, dict) else None
        if status != 200 or not err:
            out = _classify_status(status, err or data, getattr(resp, "headers", None))
            if status == 200:     # 200 without "ok": malformed answer, don't insist
                out.retryable = False
            return out
        return _Outcome(False, err in _RETRYABLE_API_ERRORS, None, f"Slack API error: {err}")


def _run_bounded(fn, timeout: float) -> _Outcome:
    """Run one delivery attempt in a daemon thread and give up on it after `timeout` (+ grace):
    socket timeouts don't bound DNS look-ups or a server trickling bytes."""
    box: list[_Outcome] = []

    def target():
        try:
            box.append(fn())
        except BaseException as exc:  # noqa: BLE001 - report, never propagate
            box.append(_classify_exception(exc))

    th = threading.Thread(target=target, name="slack-alert", daemon=True)
    th.start()
    th.join(timeout + 0.5)
    if th.is_alive() or not box:
        return _Outcome(False, True, None, f"no answer within {timeout:.1f}s")
    return box[0]


def post_alert(text: str, blocks: list[dict] | None = None, settings: Settings | None = None, *,
               timeout_s: float = 5.0, attempts: int = 3) -> bool:
    """Send an alert to Slack; True if Slack accepted it.

    Webhook (SLACK_WEBHOOK_URL) first, else Web API chat.postMessage (SLACK_BOT_TOKEN and
    SLACK_CHANNEL; base URL from env SLACK_API_URL), else the text is only logged. Connection
    errors, timeouts, 5xx and 429 are retried with exponential backoff; each attempt is bounded
    by `timeout_s` and the whole call by about attempts × timeout_s + backoff (< 20 s by
    default). Never raises; everything sent or logged is redacted.
    """
    secrets: list[str] = []
    try:
        if settings is None:
            try:
                settings = get_settings()
            except Exception as exc:  # noqa: BLE001 - invalid settings must not hide the alert
                logger.warning("Slack alert not sent: settings unavailable (%s). Alert: %s",
                               redact(str(exc)), redact(_truncate(str(text), 2000)))
                return False
        secrets = _expand_secrets(secrets_from_settings(settings))
        text = redact(str(text or ""), secrets)
        blocks = _enforce_limits(_scrub(list(blocks or []), secrets))

        hook = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        lg = _redacting_logger(secrets)
        if hook:
            via = "webhook"

            def send(t):
                return _send_webhook(hook, text, blocks, t, lg)
        elif token and settings.slack_channel:
            via = f"chat.postMessage to {settings.slack_channel}"

            def send(t):
                return _send_web_api(token, settings.slack_channel, text, blocks, t, lg)
        else:
            why = ("SLACK_BOT_TOKEN is set but SLACK_CHANNEL is not" if token
                   else "Slack is not configured (set SLACK_WEBHOOK_URL or SLACK_BOT_TOKEN)")
            logger.warning("Slack alert not sent: %s. Alert:\n%s", why, text)
            return False

        attempts = max(int(attempts), 1)
        timeout_s = max(float(timeout_s), 0.1)
        backoffs = [min(BACKOFF_BASE_S * 2 ** i, BACKOFF_MAX_S) for i in range(attempts - 1)]
        deadline = time.monotonic() + attempts * timeout_s + sum(backoffs) + 1.0
        outcome = _Outcome(False, detail="not attempted")
        done = 0
        for i in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0.05:
                break
            budget = min(timeout_s, remaining)
            outcome = _run_bounded(functools.partial(send, budget), budget)
            done += 1
            if outcome.ok:
                if i:
                    logger.info("Slack alert delivered via %s on attempt %d", via, i + 1)
                return True
            if not outcome.retryable or i == attempts - 1:
                break
            pause = backoffs[i] * random.uniform(0.8, 1.2)
            if outcome.retry_after is not None:
                pause = max(pause, min(outcome.retry_after, BACKOFF_MAX_S))
            if time.monotonic() + pause >= deadline - 0.05:
                break
            logger.info("Slack alert attempt %d via %s failed (%s); retrying in %.1fs",
                        i + 1, via, redact(outcome.detail, secrets), pause)
            time.sleep(pause)
        logger.warning("Slack alert not delivered via %s after %d attempt(s): %s. Alert:\n%s",
                       via, done, redact(outcome.detail, secrets), _truncate(text, 2000))
        return False
    except Exception as exc:  # noqa: BLE001 - alerting must never raise
        logger.warning("Slack alert failed unexpectedly: %s",
                       redact(f"{type(exc).__name__}: {exc}", secrets))
        return False


def notify_failure(*, title: str | None = None, flow_name: str | None = None,
                   environment: str = "unknown", gate: GateResult | None = None,
                   error: BaseException | str | None = None, rolled_back: list[str] | None = None,
                   run_url: str | None = None, flow_run_id: str | None = None,
                   settings: Settings | None = None, timeout_s: float = 5.0,
                   attempts: int = 3) -> bool:
    """Build and post a failure alert; True if Slack accepted it. Never raises.

    A `GateFailed` error supplies the gate when none is given. Without `run_url`, the link is
    built from PREFECT_UI_URL and `flow_run_id` (default: the current Prefect flow run, if any).
    """
    try:
        if settings is None:
            try:
                settings = get_settings()
            except Exception as exc:  # noqa: BLE001
                logger.warning("settings unavailable for the alert: %s", redact(str(exc)))
                settings = None
        if gate is None and isinstance(error, BaseException):
            gate = getattr(error, "result", None) if isinstance(
                getattr(error, "result", None), GateResult) else None
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        flow_name = flow_name or _current_flow_name() or "unknown flow"
        if run_url is None and settings is not None and settings.prefect_ui_url:
            run_url = flow_run_url(flow_run_id or _current_flow_run_id(), settings)
        title = title or (f"Gate failed: {gate.name}" if gate is not None and not gate.passed
                          else f"Flow failed: {flow_name}")
        secrets = secrets_from_settings(settings)
        text, blocks = build_alert(title=title, flow_name=flow_name, environment=environment,
                                   gate=gate, error=error, rolled_back=list(rolled_back or []),
                                   run_url=run_url, secrets=secrets)
    except Exception as exc:  # noqa: BLE001 - fall back to a plain text alert
        logger.warning("could not build the alert blocks: %s", redact(f"{exc!r}"))
        text, blocks = f"{title or 'Runbook failure'} — {flow_name}: {error}", []
    if settings is None:
        logger.warning("Slack alert not sent (no settings). Alert:\n%s", redact(str(text)))
        return False
    return post_alert(text, blocks, settings, timeout_s=timeout_s, attempts=attempts)


def _current_flow_run_id() -> str | None:
    try:
        from prefect.runtime import flow_run
        rid = flow_run.id
        return str(rid) if rid else None
    except Exception:  # noqa: BLE001
        return None


def _current_flow_name() -> str | None:
    try:
        from prefect.context import FlowRunContext
        ctx = FlowRunContext.get()
        return ctx.flow.name if ctx and ctx.flow else None
    except Exception:  # noqa: BLE001
        return None
