"""The release manager's path, in a real browser: `runbook ui` (its own Prefect server, every flow
served with the target's settings), Debian's Chromium driven by Playwright through the Prefect
UI: Deployments -> Week 0 Day 1-2 -> Custom run -> staging -> Submit, completed; the same on
production, which pauses until approved in the UI's pause form, completed; the standup's
artifact shows the plan's boxes ticked."""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prefect_processes import log_tail, runbook_ui

from runbook.pg import connect

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FLOW, DEPLOYMENT = "week0-day1-2-standardize-fields", "week0-day1-2"
STANDUP_FLOW = "standup-report"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

pytestmark = pytest.mark.timeout(900)


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


def wait_until_ok(check, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(1)
    return result


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


def wait_state(api: str, run_id: str, states: set[str], proc: subprocess.Popen, log: Path,
               timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while (run := flow_run(api, run_id))["state"]["type"] not in states:
        assert proc.poll() is None, f"runbook ui exited\n{log_tail(log)}"
        assert run["state"]["type"] not in TERMINAL, \
            f"run ended {run['state']['type']}: {run['state'].get('message')}\n{log_tail(log, 80)}"
        assert time.monotonic() < deadline, f"run still {run['state']['type']}\n{log_tail(log)}"
        time.sleep(2)
    return run


def custom_run(page, ui: str, api: str, deployment: dict, environment: str, shots: Path) -> tuple[str, str]:
    """The deployment (Week 0 Day 1-2) -> Run -> Custom run -> environment -> Submit; the run's
    (id, name)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    # the deployment's own page (with every plan day served, the list has more than one page)
    page.goto(f"{ui}/deployments/deployment/{deployment['id']}")
    expect(page.get_by_text(FLOW).first).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Custom run").click()
    # the form Prefect renders from the flow signature: environment is a select of the
    # Literal's values
    env_field = page.locator(".schema-form-property").filter(has_text="environment")
    control = env_field.locator(".p-select-button__control")
    control.focus()
    page.keyboard.press("Space")       # opens the select (a click toggles it twice)
    page.get_by_role("option", name=environment, exact=True).click()
    expect(env_field.locator(".p-select-button__value")).to_have_text(environment)
    expect(page.get_by_role("option")).to_have_count(0)
    page.screenshot(path=str(shots / f"ui-custom-run-{environment}.png"), full_page=True)
    run_name = f"ui-{environment}-{uuid.uuid4().hex[:8]}"
    page.locator(".flow-run-name-input input").fill(run_name)
    page.get_by_role("button", name="Submit").click()
    # back on the deployment, the new run is listed under the name the form gave it; a busy UI
    # may not have refreshed the list yet: then open the run the server has
    link = page.get_by_role("link", name=run_name, exact=True).first
    try:
        link.click(timeout=15_000)
    except PlaywrightTimeout:
        found = run_named(api, deployment["id"], run_name, timeout_s=60)
        page.goto(f"{ui}/runs/flow-run/{found}")
    page.wait_for_url("**/runs/flow-run/*")
    return page.url.rstrip("/").split("/")[-1].split("?")[0], run_name


def approve_in_pause_form(page, ui: str, run_id: str, shots: Path) -> None:
    """The paused run's page -> Resume -> the Approval form (approve, approver, comment) -> Submit."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    page.goto(f"{ui}/runs/flow-run/{run_id}")
    expect(page.locator(".state-badge").first).to_have_text("Paused", timeout=60_000)
    page.get_by_role("button", name="Resume").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Approve migration 014").first).to_be_visible()
    # the form Prefect renders from the Approval model: a toggle, then two text fields
    try:
        dialog.get_by_role("switch").or_(dialog.get_by_role("checkbox")).first.click(timeout=5_000)
    except PlaywrightTimeout:
        dialog.locator(".p-toggle").first.click()
    # the form renders its fields from the schema it fetches: on a busy machine they come late
    fields = dialog.locator("textarea, input[type=text]")
    expect(fields).to_have_count(2, timeout=60_000)
    fields.nth(0).fill("release-manager")
    fields.nth(1).fill("rehearsal on staging passed")
    expect(fields.nth(1)).to_have_value("rehearsal on staging passed")
    page.screenshot(path=str(shots / "ui-approval-form.png"), full_page=True)
    dialog.get_by_role("button", name="Submit").click()
    # the dialog closes once the server took the input; still open, the failure screenshot shows why
    expect(dialog).to_be_hidden(timeout=60_000)


def quick_run(page, ui: str, deployment_id: str) -> None:
    page.goto(f"{ui}/deployments/deployment/{deployment_id}")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("Quick run").click()


def test_release_manager_runs_day1_2_and_approves_production_in_the_ui(target, slack_standin, tmp_path):
    """`runbook ui` against the configured target; in the browser: Day 1-2 on staging, then on
    production, which pauses: approved in the UI's pause form, it completes; the standup, run
    from its deployment, shows the plan's box ticked as an artifact."""
    browser_path = chromium()
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_RUNNER_POLL_FREQUENCY="2")
    with runbook_ui(tmp_path / "ui", env=env) as (ui, proc, out):
        api = f"{ui}/api"
        deployment = httpx.get(f"{api}/deployments/name/{FLOW}/{DEPLOYMENT}", timeout=10).raise_for_status().json()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(browser_path), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            try:
                staging_id, staging_name = custom_run(page, ui, api, deployment, "staging", shots)
                staging = wait_state(api, staging_id, {"COMPLETED"}, proc, out)
                page.reload()
                expect(page.get_by_text(staging_name).first).to_be_visible()
                expect(page.locator(".state-badge").first).to_have_text("Completed")

                prod_id, _ = custom_run(page, ui, api, deployment, "production", shots)
                wait_state(api, prod_id, {"PAUSED"}, proc, out)
                approve_in_pause_form(page, ui, prod_id, shots)
                production = wait_state(api, prod_id, {"COMPLETED"}, proc, out)
                page.goto(f"{ui}/runs/flow-run/{prod_id}")
                expect(page.locator(".state-badge").first).to_have_text("Completed")
                page.screenshot(path=str(shots / "ui-production-completed.png"), full_page=True)

                standup_dep = httpx.get(f"{api}/deployments/name/{STANDUP_FLOW}/weekday-mornings",
                                        timeout=10).raise_for_status().json()
                quick_run(page, ui, standup_dep["id"])
                standup_run = wait_until_ok(lambda: runs_of(api, standup_dep["id"]), 60)[0]
                wait_state(api, standup_run, {"COMPLETED"}, proc, out)
                artifact = httpx.post(f"{api}/artifacts/filter", timeout=10, json={
                    "artifacts": {"key": {"any_": ["standup"]}}, "sort": "CREATED_DESC"}).json()[0]
                page.goto(f"{ui}/artifacts/artifact/{artifact['id']}")
                expect(page.get_by_text("Migration 014 run on production").first).to_be_visible()
                page.screenshot(path=str(shots / "ui-standup-artifact.png"), full_page=True)
            except Exception:
                page.screenshot(path=str(shots / "ui-failure.png"), full_page=True)
                print(f"failure screenshot: {shots / 'ui-failure.png'}\n{log_tail(out)}")
                raise
            finally:
                browser.close()

    # from the UI forms, for this deployment, with what was chosen there
    assert staging["deployment_id"] == production["deployment_id"] == deployment["id"]
    assert staging["parameters"]["environment"] == "staging"
    assert production["parameters"]["environment"] == "production"
    # the real work: migration 014 expanded both databases
    assert column_exists(target.staging_url, "lots", "quantity_open")
    assert column_exists(target.database_url, "lots", "quantity_open")
    assert "Daily standup" in slack_standin.bodies()
