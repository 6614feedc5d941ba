"""Slack alerts: message shape, delivery through a real HTTP stand-in (webhook and Web API),
redaction of secrets from what is sent and logged, and bounded, non-raising failure handling."""
from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest
import slack_standin as standin

from runbook.errors import GateFailed
from runbook.gate_result import GateResult
from runbook.settings import Settings, get_settings
from runbook.tasks.notify import notify_failure, post_alert
from runbook.tasks.notify.messages import build_alert, flow_run_url, sample_table
from runbook.tasks.notify.redact import redact

slack_standin = standin.slack_standin            # the fixture, by name

DB_PASSWORD = "Pg-S3cret-pw-42"
DB_URL = f"postgresql://runbook:{DB_PASSWORD}@db.internal:5432/dawsos"
OTHER_PASSWORD = "OtherPw-777"
OTHER_URL = f"postgresql://app:{OTHER_PASSWORD}@replica:5432/dawsos"
HOOK_SECRET = "hookSecretXyZ9876543210abcdef"
BOT_TOKEN = "xoxb-1111111111-2222222222-botSecretToken"
UI = "http://prefect.local:4200"
RUN_ID = "0b6f6c1e-1234-4bcd-9def-000000000001"


def make_settings(**kw) -> Settings:
    base = {"slack_webhook_url": None, "slack_bot_token": None, "slack_channel": None,
            "database_url": None, "staging_database_url": None, "target_api_token": None,
            "prefect_ui_url": None}
    base.update(kw)
    return Settings(_env_file=None, **base)


def make_gate(rows: int = 7) -> GateResult:
    return GateResult(
        name="parity:lots", passed=False,
        expectation="every lot in the old table has a row in the new table",
        observed=3, expected=0,
        sample=[{"lot_id": i, "symbol": "AAPL" if i % 2 else "a-very-long-symbol-name-" * 3,
                 "qty": 10 * i, "note": None} for i in range(1, rows + 1)])


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch):
    for name in ("SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_API_URL",
                 "PREFECT_UI_URL", "DATABASE_URL", "STAGING_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def block(blocks, kind, contains=None):
    for b in blocks:
        if b["type"] == kind and (contains is None or contains in json.dumps(b)):
            return b
    raise AssertionError(f"no {kind} block containing {contains!r}: {json.dumps(blocks)[:800]}")


# ---------------------------------------------------------------------------------- message

def test_build_alert_shape():
    url = flow_run_url(RUN_ID, make_settings(prefect_ui_url=UI + "/"))
    assert url == f"{UI}/runs/flow-run/{RUN_ID}"
    now = datetime(2025, 5, 1, 12, 30, tzinfo=UTC)
    text, blocks = build_alert(title="Cutover failed", flow_name="cutover", environment="staging",
                               gate=make_gate(), error="GateFailed: parity:lots",
                               rolled_back=["migration 0042", "feature flag lots_v2"],
                               run_url=url, now=now)

    header = block(blocks, "header")
    assert header["text"]["type"] == "plain_text" and "Cutover failed" in header["text"]["text"]

    summary = block(blocks, "section", "Expectation")["text"]["text"]
    assert "parity:lots" in summary and "every lot in the old table" in summary
    assert "cutover" in summary

    fields = block(blocks, "section", "Observed")["fields"]
    assert [f["text"].split("\n")[0] for f in fields] == ["*Observed*", "*Expected*"]
    assert "3" in fields[0]["text"] and "0" in fields[1]["text"]

    table_text = block(blocks, "section", "Sample rows")["text"]["text"]
    assert "(5 of 7)" in table_text
    table = table_text.split("```")[1].splitlines()
    assert table[0].split(" | ")[0].strip() == "lot_id"
    assert set(table[1]) <= {"-", "+"}
    rows = table[2:]
    assert len(rows) == 5 and rows[0].startswith("1 ") and rows[-1].startswith("5 ")
    assert "lot_id" in table[0] and "symbol" in table[0] and "qty" in table[0]
    # aligned columns: every separator at the same offset
    seps = {tuple(i for i, ch in enumerate(line) if ch in "|+") for line in table[:-1]}
    assert len(seps) == 1, table
    assert "…" in table_text                                   # long cells truncated
    assert "a-very-long-symbol-name-" * 3 not in table_text

    rolled = block(blocks, "section", "Rolled back")["text"]["text"]
    assert "• migration 0042" in rolled and "• feature flag lots_v2" in rolled

    button = block(blocks, "actions")["elements"][0]
    assert button["type"] == "button" and button["url"] == url

    ctx = block(blocks, "context")["elements"][0]["text"]
    assert "staging" in ctx and "2025-05-01 12:30:00 UTC" in ctx

    assert "Cutover failed" in text and "parity:lots" in text and url in text


def test_build_alert_respects_block_kit_limits_and_minimal_input():
    huge = GateResult(name="g" * 500, passed=False, expectation="e" * 5000, observed="o" * 5000,
                      expected=list(range(3000)),
                      sample=[{f"c{i}": "x" * 100 for i in range(20)} for _ in range(50)])
    text, blocks = build_alert(title="T" * 400, flow_name="f" * 400, environment="prod",
                               gate=huge, error="boom\n" * 2000, rolled_back=["s"] * 100,
                               run_url=None)
    assert len(block(blocks, "header")["text"]["text"]) <= 150
    for b in blocks:
        if b["type"] == "section":
            if "text" in b:
                assert len(b["text"]["text"]) <= 3000
            for f in b.get("fields", []):
                assert len(f["text"]) <= 2000
    assert not [b for b in blocks if b["type"] == "actions"]        # no run url → no button
    assert len(blocks) <= 50 and len(text) <= 3000

    text, blocks = build_alert(title="Flow crashed", flow_name="backfill", environment="dev",
                               gate=None, error=None, rolled_back=[], run_url=None)
    assert block(blocks, "section", "Rolled back")["text"]["text"] == "*Rolled back:* nothing"
    assert "Flow crashed" in text


def test_sample_table_alignment():
    t = sample_table([{"a": 1, "bb": "x"}, {"a": 22222, "bb": None}])
    lines = t.splitlines()
    assert lines[0] == "a     | bb" and lines[1] == "------+---" and lines[3] == "22222 | ∅"


def test_redact():
    assert redact(f"connect {DB_URL} failed", []) == \
        "connect postgresql://runbook:***@db.internal:5432/dawsos failed"
    assert redact("postgres://u:p@ss@h/db", []) == "postgres://u:***@h/db"
    assert BOT_TOKEN not in redact(f"token {BOT_TOKEN}", [])
    assert redact("https://hooks.slack.com/services/T1/B2/abc", []) == \
        "https://hooks.slack.com/services/***"
    assert redact(f"pw is {DB_PASSWORD}!", [DB_PASSWORD]) == "pw is ***!"
    # a secret cut by truncation leaves no prefix behind
    assert DB_PASSWORD[:8] not in redact(f"pw is {DB_PASSWORD[:8]}…", [DB_PASSWORD])
    assert redact("plain text", ["ab", None]) == "plain text"


# ---------------------------------------------------------------------------------- delivery

def test_webhook_delivers(slack_standin):
    settings = make_settings(slack_webhook_url=slack_standin.webhook_url(HOOK_SECRET))
    text, blocks = build_alert(title="Cutover failed", flow_name="cutover", environment="prod",
                               gate=make_gate(), error=None, rolled_back=["m1"], run_url=None)
    assert post_alert(text, blocks, settings) is True
    [req] = slack_standin.requests
    assert req.path.startswith("/services/") and req.headers["Content-Type"].startswith(
        "application/json")
    assert req.json["text"] == text
    assert req.json["blocks"][0]["type"] == "header"
    assert "parity:lots" in json.dumps(req.json["blocks"])


def test_bot_token_delivers(slack_standin, monkeypatch):
    monkeypatch.setenv("SLACK_API_URL", slack_standin.api_url)
    settings = make_settings(slack_bot_token=BOT_TOKEN, slack_channel="#release")
    ok = notify_failure(title="Cutover failed", flow_name="cutover", environment="prod",
                        gate=make_gate(), rolled_back=["m1"], settings=settings)
    assert ok is True
    [req] = slack_standin.requests
    assert req.path == "/api/chat.postMessage"
    assert req.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert req.payload["channel"] == "#release"
    assert req.payload["blocks"][0]["type"] == "header"
    assert "parity:lots" in req.payload["text"]


def test_notify_failure_from_gate_failed_with_run_link(slack_standin):
    settings = make_settings(slack_webhook_url=slack_standin.webhook_url(), prefect_ui_url=UI)
    gate = make_gate(2)
    assert notify_failure(error=GateFailed(gate), flow_name="cutover", environment="prod",
                          flow_run_id=RUN_ID, settings=settings) is True
    body = slack_standin.requests[0].json
    assert body["blocks"][0]["text"]["text"].endswith("Gate failed: parity:lots")
    assert block(body["blocks"], "actions")["elements"][0]["url"] == \
        f"{UI}/runs/flow-run/{RUN_ID}"


def test_secrets_never_sent_nor_logged(slack_standin, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)                   # slack_sdk logs URLs/bodies at DEBUG
    hook = slack_standin.webhook_url(HOOK_SECRET)
    monkeypatch.setenv("SLACK_API_URL", slack_standin.api_url)

    def leaky(hook_text: str) -> str:
        return (f"could not connect to {DB_URL}; password {DB_PASSWORD} rejected; "
                f"also tried {OTHER_URL}; hook={hook_text}; token={BOT_TOKEN}")

    # webhook delivery: the webhook URL is a configured secret; Web API delivery: the bot token
    # is (the webhook URL is not configured there, so it is left out of that message)
    runs = [(make_settings(slack_webhook_url=hook, database_url=DB_URL), hook),
            (make_settings(slack_bot_token=BOT_TOKEN, slack_channel="#c",
                           staging_database_url=DB_URL), "<no hook>")]
    for settings, hook_text in runs:
        gate = GateResult(name="parity:lots", passed=False, expectation=f"rows match ({DB_URL})",
                          observed=DB_PASSWORD, expected=leaky(hook_text),
                          sample=[{"dsn": DB_URL, "secret": DB_PASSWORD + "-and-more-text"}])
        assert notify_failure(title=f"failed on {DB_URL}", flow_name="cutover",
                              environment="prod", gate=gate, error=leaky(hook_text),
                              rolled_back=[f"restore from {DB_URL}"], run_url=None,
                              settings=settings) is True
    # the failing path logs the alert text: still redacted
    slack_standin.fail(500)
    text = leaky(hook)
    assert post_alert(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
                      runs[0][0], timeout_s=2, attempts=2) is False

    sent = slack_standin.bodies()
    assert len(slack_standin.requests) == 4
    assert "postgresql://runbook:***@db.internal" in sent and "postgresql://app:***@" in sent
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for secret in (DB_PASSWORD, HOOK_SECRET, BOT_TOKEN, OTHER_PASSWORD, DB_PASSWORD[:6] + "…"):
        assert secret not in sent, secret
        assert secret not in logged, secret
    assert "Slack alert not delivered" in caplog.text


def test_server_error_is_retried_then_false(slack_standin, caplog):
    slack_standin.fail(500)
    settings = make_settings(slack_webhook_url=slack_standin.webhook_url())
    t0 = time.monotonic()
    assert post_alert("hello", [], settings, timeout_s=2, attempts=3) is False
    assert time.monotonic() - t0 < 30
    assert len(slack_standin.requests) == 3
    assert any(r.levelno == logging.WARNING and r.name == "runbook.notify"
               for r in caplog.records)


def test_transient_errors_recover(slack_standin, monkeypatch):
    slack_standin.fail(500, times=1)
    assert post_alert("hi", [], make_settings(slack_webhook_url=slack_standin.webhook_url()),
                      timeout_s=2) is True
    assert len(slack_standin.requests) == 2

    slack_standin.clear()
    monkeypatch.setenv("SLACK_API_URL", slack_standin.api_url)
    slack_standin.fail(429, times=1, retry_after=0.2)
    assert post_alert("hi", [], make_settings(slack_bot_token=BOT_TOKEN, slack_channel="#c"),
                      timeout_s=2) is True
    assert len(slack_standin.requests) == 2


def test_web_api_server_error_is_retried_then_false(slack_standin, monkeypatch):
    monkeypatch.setenv("SLACK_API_URL", slack_standin.api_url)
    slack_standin.fail(503)
    t0 = time.monotonic()
    assert post_alert("hi", [], make_settings(slack_bot_token=BOT_TOKEN, slack_channel="#c"),
                      timeout_s=2, attempts=3) is False
    assert time.monotonic() - t0 < 30
    assert len(slack_standin.requests) == 3


def test_client_error_is_not_retried(slack_standin):
    slack_standin.fail(404)
    assert post_alert("hi", [], make_settings(slack_webhook_url=slack_standin.webhook_url()),
                      timeout_s=2) is False
    assert len(slack_standin.requests) == 1


def test_slow_slack_returns_within_bound(slack_standin):
    slack_standin.slow(20)
    settings = make_settings(slack_webhook_url=slack_standin.webhook_url())
    t0 = time.monotonic()
    assert post_alert("hi", [], settings, timeout_s=1, attempts=3) is False
    elapsed = time.monotonic() - t0
    assert elapsed < 30 and elapsed < 10
    assert len(slack_standin.requests) == 3

    slack_standin.clear()
    slack_standin.slow(0.3)                          # slow but within the timeout: delivered
    assert post_alert("hi", [], settings, timeout_s=3) is True


def test_slack_down_returns_false_without_raising(slack_standin, caplog):
    settings = make_settings(slack_webhook_url=slack_standin.webhook_url(HOOK_SECRET))
    slack_standin.down()
    t0 = time.monotonic()
    assert post_alert("hi", [], settings) is False
    assert time.monotonic() - t0 < 30
    assert "Slack alert not delivered" in caplog.text and HOOK_SECRET not in caplog.text


def test_not_configured_logs_and_returns_false(caplog):
    caplog.set_level(logging.INFO, logger="runbook.notify")
    text, blocks = build_alert(title="Cutover failed", flow_name="cutover", environment="prod",
                               gate=None, error=f"boom at {DB_URL}", rolled_back=[], run_url=None)
    assert post_alert(text, blocks, make_settings(database_url=DB_URL)) is False
    rec = [r for r in caplog.records if r.name == "runbook.notify"]
    assert rec and "Cutover failed" in caplog.text and "not configured" in caplog.text
    assert DB_PASSWORD not in caplog.text

    caplog.clear()
    assert post_alert("x", [], make_settings(slack_bot_token=BOT_TOKEN)) is False   # no channel
    assert "SLACK_CHANNEL" in caplog.text and BOT_TOKEN not in caplog.text


def test_invalid_environment_settings_do_not_raise(monkeypatch, caplog):
    monkeypatch.setenv("DATABASE_URL", "mysql://u:pw@h/db")
    monkeypatch.chdir("/")                             # no .env file
    assert post_alert("hi", []) is False
    assert notify_failure(flow_name="f", error=RuntimeError("x")) is False
    assert "settings" in caplog.text
