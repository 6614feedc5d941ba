"""Deployments: what `runbook serve` registers (names, tags, descriptions, typed parameter
schemas, schedules), checked on the built objects and on a real Prefect server, where a run
with an invalid environment is refused with a clear message."""
from __future__ import annotations

import os
import subprocess

import pytest
from prefect.exceptions import PrefectHTTPStatusError
from prefect_processes import executable, free_port, runbook_serve, wait_until

from runbook.deployments.build import collect, load_flow
from runbook.deployments.catalog import catalog
from runbook.deployments.settings import (
    DEFAULT_STANDUP_CRON,
    DEFAULT_VERIFY_CRON,
    load_serve_settings,
)
from runbook.errors import RunbookError
from runbook.plan import PLAN

DAY1_2 = "week0-day1-2-standardize-fields/week0-day1-2"


@pytest.fixture
def serve_settings(monkeypatch):
    for name in ("RUNBOOK_VERIFY_CRON", "RUNBOOK_STANDUP_CRON", "RUNBOOK_SCHEDULE_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    return load_serve_settings()


def full_name(d) -> str:
    return f"{d.flow_name}/{d.name}"


def environment_enums(schema: dict) -> list[list]:
    prop = schema.get("properties", {}).get("environment")
    if prop is None:
        return []
    options = prop.get("anyOf", [prop])     # `Environment | None` is an anyOf
    return [o["enum"] for o in options if "enum" in o]


def test_one_deployment_per_flow_with_tags_descriptions_and_typed_parameters(serve_settings):
    built, skipped = collect(serve_settings)
    assert skipped == [], f"flows that do not load: {skipped}"
    assert len(built) == len(catalog())
    by_name = {full_name(d): d for d in built}
    assert len(by_name) == len(built)
    assert {d.flow_name for d in built} >= {day.flow_name for day in PLAN}
    for spec, d in zip(catalog(), built, strict=True):
        assert d.entrypoint == spec.entrypoint.replace(":", ".")   # module path: any cwd
        assert d.description and d.tags and d.enforce_parameter_schema
    for day in PLAN:
        d = by_name[f"{day.flow_name}/{day.key}"]
        assert {day.week.lower().replace(" ", ""), day.day.lower().replace(" ", "")} <= set(d.tags)
        assert day.title in d.description
        assert all(item.text in d.description for item in day.checklist)
    assert {"week0", "day1-2", "migration"} <= set(by_name[DAY1_2].tags)

    # the UI renders a select for environment, and only the two environments exist
    with_env = [d for d in built if "environment" in d._parameter_openapi_schema.properties]
    assert len(with_env) >= len(PLAN) + 3
    for d in with_env:
        schema = d._parameter_openapi_schema.model_dump()
        assert environment_enums(schema) == [["staging", "production"]], full_name(d)


def test_schedules_default_env_and_cli(serve_settings, monkeypatch):
    by_name = {full_name(d): d for d in collect(serve_settings)[0]}
    verify = by_name[f"{load_flow('runbook.flows.verification:verification').name}/nightly"]
    standup = by_name[f"{load_flow('runbook.flows.standup:standup').name}/weekday-mornings"]
    assert [(s.schedule.cron, s.parameters) for s in verify.schedules] == [
        (DEFAULT_VERIFY_CRON, {"environment": "staging"}),
        (DEFAULT_VERIFY_CRON, {"environment": "production"})]
    assert [s.schedule.cron for s in standup.schedules] == [DEFAULT_STANDUP_CRON] == ["0 9 * * 1-5"]
    assert DEFAULT_VERIFY_CRON == "0 2 * * *"
    assert sum(bool(d.schedules) for d in by_name.values()) == 2

    monkeypatch.setenv("RUNBOOK_VERIFY_CRON", "30 1 * * *")
    monkeypatch.setenv("RUNBOOK_STANDUP_CRON", "0 7 * * 1-5")
    monkeypatch.setenv("RUNBOOK_SCHEDULE_TIMEZONE", "Europe/Paris")
    settings = load_serve_settings(standup_cron="15 8 * * 1-5")     # a CLI option beats env
    crons = {full_name(d): {(s.schedule.cron, s.schedule.timezone) for s in d.schedules}
             for d in collect(settings)[0]}
    assert crons[full_name(verify)] == {("30 1 * * *", "Europe/Paris")}
    assert crons[full_name(standup)] == {("15 8 * * 1-5", "Europe/Paris")}

    monkeypatch.setenv("RUNBOOK_VERIFY_CRON", "0 25 * * *")
    with pytest.raises(RunbookError, match=r"^setting RUNBOOK_VERIFY_CRON is invalid: .*0 25 \* \* \*"):
        load_serve_settings()


def test_serve_fails_in_one_line_without_a_reachable_api(tmp_path):
    env = {**os.environ, "PREFECT_HOME": str(tmp_path), "COLUMNS": "60"}   # no profile, narrow tty
    env.pop("PREFECT_API_URL", None)
    cases = {"PREFECT_API_URL is not set": env,
             "is not reachable": {**env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}}
    for expected, case_env in cases.items():
        out = subprocess.run([executable("runbook"), "serve"], check=False, env=case_env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "PREFECT_API_URL" in lines[0] and expected in lines[0], out.stderr


@pytest.mark.usefixtures("prefect_server")
def test_serve_registers_deployments_and_server_rejects_invalid_environment(serve_settings, tmp_path):
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL

    expected = {full_name(d): d for d in collect(serve_settings)[0]}
    with get_client(sync_client=True) as client, \
            runbook_serve(PREFECT_API_URL.value(), tmp_path) as (serve, log):

        def registered():
            found = {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}
            return found if set(expected) <= set(found) else None

        found = wait_until(registered, timeout=120, what="runbook serve registers every deployment",
                           proc=serve, log=log, every=1)
        for name, built in expected.items():
            d = found[name]
            assert set(d.tags) == set(built.tags) and d.description == built.description
            assert [s.schedule.cron for s in d.schedules] == [s.schedule.cron for s in built.schedules]
            assert d.enforce_parameter_schema

        day = found[DAY1_2]
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_flow_run_from_deployment(day.id, parameters={"environment": "prod"})
        assert refused.value.response.status_code == 409
        assert refused.value.response.json()["detail"] == (
            "Error creating flow run: Validation failed for field 'environment'. "
            "Failure reason: 'prod' is not one of ['staging', 'production']")
        assert client.read_flow_runs(deployment_filter=_deployment_filter(day.id)) == []


def _deployment_filter(deployment_id):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
