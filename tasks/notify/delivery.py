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
import threading
import time
from typing import Any

from runbook.gate_result import GateResult
from runbook.settings import Settings, get_settings
from runbook.tasks.notify.messages import build_alert, enforce_limits, flow_run_url, truncate
from runbook.tasks.notify.redact import (
    RedactingFilter,
    expand_secrets,
    redact,
    scrub,
    secrets_from_settings,
)

logger = logging.getLogger("runbook.notify")

DEFAULT_SLACK_API_URL = "https://slack.com/api/"




# Retry policy
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 4.0
_RETRYABLE_API_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                         "request_timeout"}


# --------------------------------------------------------------------------------------------
# redaction















# --------------------------------------------------------------------------------------------
# message



















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
                    f"HTTP {status}: {truncate(str(body or '').strip(), 200)}")


def _classify_exception(exc: BaseException) -> _Outcome:
    retryable = isinstance(exc, (OSError, http.client.HTTPException, json.JSONDecodeError))
    return _Outcome(False, retryable, None, f"{type(exc).__name__}: {truncate(str(exc), 300)}")


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
                               redact(str(exc)), redact(truncate(str(text), 2000)))
                return False
        secrets = expand_secrets(secrets_from_settings(settings))
        text = redact(str(text or ""), secrets)
        blocks = enforce_limits(scrub(list(blocks or []), secrets))

        hook = settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        lg = redacting_logger(secrets)
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
                       via, done, redact(outcome.detail, secrets), truncate(text, 2000))
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
                                   run_url=run_url, secrets=secrets,
                                   full_rows=bool(settings and settings.slack_sample_full_rows))
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


def redacting_logger(secrets: list[str]) -> logging.Logger:
    """A private child of `runbook.notify` that redacts everything logged through it; handed to
    slack_sdk, whose debug lines contain the webhook URL and the request body."""
    # a private instance (not logging.getLogger): the filter holds this call's secrets
    lg = logging.Logger("runbook.notify.slack")  # noqa: LOG001
    lg.parent = logger
    lg.propagate = True
    lg.addFilter(RedactingFilter(secrets))
    return lg
