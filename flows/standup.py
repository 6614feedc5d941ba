"""The daily standup flow: read flow and task runs from the Prefect API since the last standup,
write the plan's Daily Standup Format + Progress Tracking checklist, publish it as a markdown
artifact and post it to Slack."""
from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_client
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort

from runbook.errors import RunbookError
from runbook.plan import PLAN, STANDUP_FLOW
from runbook.tasks.history import PAGE, read_all
from runbook.tasks.notify import post_alert
from runbook.tasks.notify.standup import (
    RunInfo,
    Standup,
    TaskInfo,
    build,
    to_markdown,
    to_slack_text,
)


def parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise RunbookError(f"--since {text!r}: expected an ISO date or time, e.g. 2025-11-05T09:00") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)




def last_standup_start(client, exclude: str | None = None) -> datetime | None:
    """The start of the last completed standup: where the next one picks up."""
    runs = client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=[STANDUP_FLOW])),
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType.COMPLETED]))),
        sort=FlowRunSort.START_TIME_DESC, limit=5)
    runs = [r for r in runs if str(r.id) != exclude and r.start_time]
    return runs[0].start_time if runs else None


def _info(r: FlowRun, names: dict) -> RunInfo:
    st = r.state
    return RunInfo(id=str(r.id), name=r.name, flow_name=names.get(r.flow_id, "?"),
                   state_type=st.type.value if st else "PENDING", state_name=st.name if st else "Pending",
                   message=st.message if st else None, start_time=r.start_time,
                   expected_start_time=r.expected_start_time, parameters=dict(r.parameters or {}))


def collect(since: datetime | None, *, since_last: bool = True, exclude_run: str | None = None) -> Standup:
    """Runs of the plan's flows (whole history: the checklist), runs of any flow started since
    the last standup or not finished (the sections), and their task runs."""
    with get_client(sync_client=True) as client:
        if since is None and since_last:
            since = last_standup_start(client, exclude=exclude_run)
        plan_runs = read_all(client.read_flow_runs, flow_filter=FlowFilter(
            name=FlowFilterName(any_=[d.flow_name for d in PLAN])))
        recent = read_all(client.read_flow_runs, flow_run_filter=FlowRunFilter(
            start_time=FlowRunFilterStartTime(after_=since)) if since else None)
        open_ = read_all(client.read_flow_runs, flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING,
                                              StateType.PAUSED]))))
        seen: dict = {}
        for r in plan_runs + recent + open_:
            if str(r.id) != exclude_run:
                seen[r.id] = r
        names = {fid: client.read_flow(fid).name for fid in {r.flow_id for r in seen.values()}}
        ids = list(seen)
        tasks = []
        for i in range(0, len(ids), PAGE):
            tasks += read_all(client.read_task_runs, flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=ids[i:i + PAGE])))
    task_infos = [TaskInfo(str(t.flow_run_id), t.name, t.state.type.value if t.state else "PENDING")
                  for t in tasks if t.flow_run_id]
    recent_ids = {r.id for r in recent + open_}
    runs = [_info(r, names) for r in seen.values() if r.id in recent_ids and names[r.flow_id] != STANDUP_FLOW]
    all_runs = [_info(r, names) for r in plan_runs if r.id in seen]
    return build(runs, task_infos, since=since, now=datetime.now(UTC),
                 all_runs=all_runs, all_tasks=task_infos)


def slack_blocks(s: Standup) -> list[dict]:
    lines = [f"{'☑' if ok else '☐'} {d.day}: {i.text}" for d, items in s.checklist for i, ok in items]
    return [{"type": "header", "text": {"type": "plain_text", "text": "Daily standup"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": to_slack_text(s)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Progress Tracking*\n" + "\n".join(lines)}}]


@flow(name=STANDUP_FLOW, description="Daily standup from flow and task run states: Completed / "
      "In Progress / Blocked / Next, and the plan's Progress Tracking checklist.")
def standup(since: str | None = None, post_to_slack: bool = True) -> str:
    from prefect.runtime import flow_run

    report = collect(parse_since(since), exclude_run=str(flow_run.get_id() or ""))
    md = to_markdown(report)
    create_markdown_artifact(key="standup", markdown=md, description="daily standup")
    if post_to_slack:
        post_alert(to_slack_text(report), slack_blocks(report))
    return md
