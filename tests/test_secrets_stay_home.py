"""Secrets and customer data stay home. Distinct secrets are planted in every secret setting
(database passwords as user:pw@ and as ?password=, the Slack webhook path and bot token, the API
token, the JWT signing secret, the deploy command); a failing flow runs (real PostgreSQL, real
Prefect test server, real demo API, Slack stand-in); then every log line (the run's Prefect logs,
every record logged in this process, the API's own log), every Prefect artifact of the run and
every Slack body received are searched for them: 0 hits. The search is proven able to find each
one, on texts that really were produced, so it cannot pass vacuously."""
from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from runbook.context import build_context
from runbook.expectations.gx.runner import _Runner
from runbook.flows.week0.day5 import security_fixes
from runbook.gate_result import GateResult
from runbook.settings import Settings, get_settings
from runbook.tasks.code import git_ops
from runbook.tasks.notify.messages import build_alert
from runbook.tasks.notify.redact import redact
from runbook.tasks.target.deploy import api


def planted(nonce: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"PwProd{nonce}",
        "STAGING_DATABASE_URL": f"PwStg{nonce}",
        "SLACK_WEBHOOK_URL": f"HookPath{nonce}",
        "SLACK_BOT_TOKEN": f"xoxb-{nonce}-BotTok",
        "TARGET_API_TOKEN": f"ApiTok{nonce}",
        "TARGET_JWT_SECRET": f"JwtSecret{nonce}-long-enough-for-hs256",
        "TARGET_DEPLOY_CMD": f"DeployTok{nonce}",
    }


async def _run_texts(flow_run_id) -> tuple[list[str], list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs], [f"{a.key} {a.description} {a.data}" for a in arts]


def hits(secrets: dict[str, str], texts: list[str]) -> list[tuple[str, int]]:
    return [(name, i) for name, value in secrets.items() for i, text in enumerate(texts) if value in text]


@pytest.mark.usefixtures("prefect_server")
def test_planted_secrets_reach_no_log_artifact_or_alert(target, slack_standin, monkeypatch, caplog):
    nonce = uuid.uuid4().hex[:10]
    secrets = planted(nonce)
    user_pw, query_pw = target.database_url.replace("://postgres@", f"://postgres:{secrets['DATABASE_URL']}@"), \
        f"{target.staging_url}?password={secrets['STAGING_DATABASE_URL']}"
    monkeypatch.setenv("DATABASE_URL", user_pw)
    monkeypatch.setenv("STAGING_DATABASE_URL", query_pw)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_standin.webhook_url(secret=secrets["SLACK_WEBHOOK_URL"]))
    for name in ("SLACK_BOT_TOKEN", "TARGET_API_TOKEN", "TARGET_JWT_SECRET"):
        monkeypatch.setenv(name, secrets[name])
    monkeypatch.setenv("TARGET_DEPLOY_CMD", f"/bin/true --token {secrets['TARGET_DEPLOY_CMD']}")
    get_settings.cache_clear()

    # a failing flow: a pattern condition the safe evaluator decides differently -> gate fails,
    # everything rolls back, Slack is told
    pattern = target.repo / "backend/patterns/corporate_actions_upcoming.json"
    text = pattern.read_text()
    pattern.write_text(text.replace('"{{valued_positions.position_count}} > 0"',
                                    '"{{valued_positions.position_count}} ** 1 > 0"', 1))
    git_ops.commit_all(target.repo, "test: a condition with **")
    # repr/str of the settings, the run's context, its API and GX runner show none of them
    ctx = build_context("probe", "staging", uuid.uuid4().hex)
    shown = [repr(get_settings()), str(get_settings()), repr(ctx), str(ctx), repr(api(ctx)),
             repr(_Runner(ctx.database_url, None, None, None, None))]
    assert hits(secrets, shown) == [], hits(secrets, shown)

    caplog.set_level(logging.DEBUG)
    state = security_fixes(environment="staging", return_state=True)
    assert state.is_failed()

    from prefect.logging.handlers import APILogWorker
    APILogWorker.drain_all(timeout=30)
    run_logs, artifacts = asyncio.run(_run_texts(state.state_details.flow_run_id))
    local_logs = [r.getMessage() for r in caplog.records] + [caplog.text]
    api_logs = [p.read_text(errors="replace") for p in (target.workspace / "logs").glob("*.log")]
    bodies = [r.raw.decode(errors="replace") if isinstance(r.raw, bytes) else str(r.raw)
              for r in slack_standin.requests]
    corpus = run_logs + artifacts + local_logs + api_logs + bodies

    # what was searched is real: the run's logs, its gate artifacts, the alert
    assert run_logs and bodies and any("evaluator-differential" in a for a in artifacts)
    assert "evaluator-differential" in slack_standin.bodies() and "Rolled back" in slack_standin.bodies()
    assert hits(secrets, corpus) == [], hits(secrets, corpus)
    # ... and the search finds a planted secret wherever it would have leaked
    for name, value in secrets.items():
        for text in (run_logs[0], artifacts[0], bodies[0]):
            assert hits({name: value}, [text[:40] + value + text[40:]]) == [(name, 0)]


def test_alerts_carry_keys_and_mismatching_columns_only():
    """A parity gate's sample rows are customer rows: only the key, the problem and the columns
    that disagree go to Slack, unless SLACK_SAMPLE_FULL_ROWS=true."""
    gate = GateResult(
        name="parity:lots", passed=False, expectation="every row of lots has quantity_open = qty_open",
        observed=1, expected=0,
        sample=[{"id": "lot-key-1", "problem": "value_mismatch", "portfolio_id": "customer-portfolio-9",
                 "qty_open": 5, "quantity_open": 4, "qty_original": 10, "quantity_original": 10}],
        details={"table": "lots", "key": "id",
                 "pairs": [["qty_open", "quantity_open"], ["qty_original", "quantity_original"]]})
    def alert(full_rows: bool) -> str:
        _text, blocks = build_alert(title="t", flow_name="f", environment="staging", gate=gate, error=None,
                                   rolled_back=[], run_url=None, full_rows=full_rows)
        return str(blocks)
    kept = alert(False)
    assert "lot-key-1" in kept and "quantity_open" in kept and "value_mismatch" in kept
    assert "customer-portfolio-9" not in kept and "quantity_original" not in kept
    assert "customer-portfolio-9" in alert(True)
    assert Settings(slack_sample_full_rows="true").slack_sample_full_rows is True


@pytest.mark.parametrize("text, secret", [
    ("postgresql://app:Pw1secretA@db:5432/x", "Pw1secretA"),
    ("postgresql://db:5432/x?sslmode=require&password=Pw2secretB", "Pw2secretB"),
    ("host=db port=5432 user=app password=Pw3secretC dbname=x", "Pw3secretC"),
    ("host=db password='Pw4 secret D' dbname=x", "Pw4 secret D"),
    ("https://hooks.slack.com/services/T000/B000/Pw5secretE", "Pw5secretE"),
    ("Authorization: Bearer Pw6secretF.abc", "Pw6secretF"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.Pw7secretGsig", "Pw7secretGsig"),
])
def test_redaction_covers_every_form_of_credential(text, secret):
    assert secret in text and secret not in redact(text)


def test_the_api_process_gets_an_explicit_environment(target, tmp_path, monkeypatch):
    """The managed API is given the database URL, its signing secret and the few variables it
    reads; nothing else of the runbook's environment (its Slack, database and API secrets)."""
    import psutil

    from runbook.demo.workspace import TEMPLATE
    from runbook.pg import with_application_name
    from runbook.target import DAWSOS
    from runbook.tasks.target.api_server import ApiServer

    monkeypatch.setenv("RUNBOOK_ONLY_SECRET", "never-in-the-api")
    monkeypatch.setenv("FMP_BASE_URL", "http://127.0.0.1:9/fmp")          # a variable the API reads
    server = ApiServer(TEMPLATE, target.staging_url, log_path=tmp_path / "api.log")
    server.start()
    try:
        env = psutil.Process(server.proc.pid).environ()
    finally:
        server.stop()
    # the database URL as given, its sessions named (application_name) so the gates find them
    assert env["DATABASE_URL"] == with_application_name(target.staging_url, DAWSOS.api_application_name)
    assert env["AUTH_JWT_SECRET"] == server.jwt_secret
    assert env["FMP_BASE_URL"] == "http://127.0.0.1:9/fmp"
    assert "RUNBOOK_ONLY_SECRET" not in env and "SLACK_WEBHOOK_URL" not in env
    assert set(env) <= {*DAWSOS.api_environment, "DATABASE_URL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                        DAWSOS.auth_secret_env}


def test_run_logs_are_redacted_traceback_included(target, monkeypatch):
    from runbook.tasks.notify.redact import install_run_log_redaction

    monkeypatch.setenv("TARGET_JWT_SECRET", "JwtSecretInALogLine-0123456789abcdef")
    get_settings.cache_clear()
    install_run_log_redaction()
    install_run_log_redaction()                                   # once is enough
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger("prefect.flow_runs")
    assert sum(type(f).__name__ == "RunLogRedaction" for f in logger.filters) == 1
    keep = Keep()
    logger.addHandler(keep)
    try:
        try:
            raise RuntimeError("signing with JwtSecretInALogLine-0123456789abcdef failed")
        except RuntimeError:
            logger.exception("deploy to %s failed", "postgresql://ops:Pw8secretH@db/x")
    finally:
        logger.removeHandler(keep)
        get_settings.cache_clear()
    assert len(records) == 1 and "Traceback" in records[0] and "RuntimeError" in records[0]
    assert "JwtSecretInALogLine" not in records[0] and "Pw8secretH" not in records[0]
