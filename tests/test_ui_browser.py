"""The release manager's path, in a real browser: a real `prefect server start`, `runbook serve`
with the target's settings, Debian's Chromium driven by Playwright through the Prefect UI:
Deployments -> Week 0 Day 1-2 -> Custom run -> environment = staging -> Submit, and the run
completes, doing the real work on the staging database."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prefect_processes import log_tail, prefect_server, runbook_serve, wait_until

from runbook.pg import connect

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FLOW, DEPLOYMENT = "week0-day1-2-standardize-fields", "week0-day1-2"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = pytest.mark.timeout(420)


def chromium() -> Path:
    """Debian's Chromium; installed by .ci/needs-chromium.sh if missing. Skips only when it is
    missing and cannot be installed here."""
    if not CHROMIUM.exists():
        try:
            subprocess.run(["bash", str(ROOT / ".ci" / "needs-chromium.sh")], check=True,
                           capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"{CHROMIUM} is missing and could not be installed: {exc}")
    return CHROMIUM


def screenshot_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("RUNBOOK_SCREENSHOT_DIR") or tmp_path / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def flow_run(api: str, run_id: str) -> dict:
    return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).raise_for_status().json()


def runs_of(api: str, deployment_id: str) -> list[str]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    return [r["id"] for r in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10)
            .raise_for_status().json()]


def run_named(api: str, deployment_id: str, name: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "flow_runs": {"name": {"any_": [name]}}}
    while time.monotonic() < deadline:
        runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).raise_for_status().json()
        if runs:
            return runs[0]["id"]
        time.sleep(1)
    raise AssertionError(f"the UI's Submit created no run named {name}")


def column_exists(url: str, table: str, column: str) -> bool:
    with connect(url) as conn:
        return conn.execute("SELECT EXISTS (SELECT FROM information_schema.columns"
                            " WHERE table_name = %s AND column_name = %s)", (table, column)).fetchone()[0]


def test_custom_run_from_the_ui_completes_on_staging(target, slack_standin, tmp_path):
    browser_path = chromium()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    with prefect_server(tmp_path / "prefect-home") as api, \
            runbook_serve(api, tmp_path / "serve", env={"PREFECT_RUNNER_POLL_FREQUENCY": "2"}) \
            as (serve, serve_log):
        ui = api.removesuffix("/api")
        deployment = wait_until(
            lambda: (r := httpx.get(f"{api}/deployments/name/{FLOW}/{DEPLOYMENT}", timeout=5)).status_code == 200
            and r.json(), timeout=120, what="runbook serve registers the Day 1-2 deployment",
            proc=serve, log=serve_log)

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(browser_path), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            try:
                page.goto(f"{ui}/dashboard")
                # the side navigation's entries are links with role=button
                page.get_by_role("button", name="Deployments", exact=True).click()
                page.get_by_role("link", name=DEPLOYMENT, exact=True).click()
                expect(page.get_by_text(FLOW).first).to_be_visible()
                page.get_by_role("button", name="Run", exact=True).click()
                page.get_by_text("Custom run").click()

                # the form Prefect renders from the flow signature: environment is a select of
                # the Literal's values
                env_field = page.locator(".schema-form-property").filter(has_text="environment")
                control = env_field.locator(".p-select-button__control")

                def choose(value: str) -> None:
                    control.focus()
                    page.keyboard.press("Space")       # opens the select (a click toggles it twice)
                    page.get_by_role("option", name=value, exact=True).click()
                    expect(env_field.locator(".p-select-button__value")).to_have_text(value)

                choose("production")
                expect(page.get_by_role("option")).to_have_count(0)
                choose("staging")
                page.screenshot(path=str(shots / "ui-custom-run-form.png"), full_page=True)
                run_name = f"ui-staging-{uuid.uuid4().hex[:8]}"
                page.locator(".flow-run-name-input input").fill(run_name)
                page.get_by_role("button", name="Submit").click()
                # back on the deployment, the new run is listed under the name the form gave it;
                # a busy UI may not have refreshed the list yet: then open the run the server has
                link = page.get_by_role("link", name=run_name, exact=True).first
                try:
                    link.click(timeout=15_000)
                except PlaywrightTimeout:
                    found = run_named(api, deployment["id"], run_name, timeout_s=60)
                    page.goto(f"{ui}/runs/flow-run/{found}")
                page.wait_for_url("**/runs/flow-run/*")
                run_id = page.url.rstrip("/").split("/")[-1].split("?")[0]

                deadline = time.monotonic() + 300
                while (state := flow_run(api, run_id)["state"]["type"]) not in TERMINAL:
                    assert serve.poll() is None, f"runbook serve exited\n{log_tail(serve_log)}"
                    assert time.monotonic() < deadline, f"run still {state}\n{log_tail(serve_log)}"
                    time.sleep(2)
                run = flow_run(api, run_id)
                assert state == "COMPLETED", f"run ended {state}: {run['state'].get('message')}\n" \
                                             f"{log_tail(serve_log, 80)}"

                ids = runs_of(api, deployment["id"])
                page.reload()
                expect(page.get_by_text(run_name).first).to_be_visible()
                expect(page.locator(".state-badge").first).to_have_text("Completed")
                shot = shots / "ui-run-completed.png"
                page.screenshot(path=str(shot), full_page=True)
            except Exception:
                page.screenshot(path=str(shots / "ui-failure.png"), full_page=True)
                print(f"failure screenshot: {shots / 'ui-failure.png'}")
                raise
            finally:
                browser.close()
        print(f"screenshot: {shot}")

    # one Submit, one run: from the UI form, for this deployment, with what was chosen there
    assert ids == [run_id]
    assert run["deployment_id"] == deployment["id"]
    assert run["parameters"]["environment"] == "staging"
    # and did the real work: migration 014 expanded staging, production untouched
    assert column_exists(target.staging_url, "lots", "quantity_open")
    assert not column_exists(target.database_url, "lots", "quantity_open")
    assert slack_standin.requests == []
