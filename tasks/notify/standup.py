"""The daily standup, built from Prefect flow and task runs (pure: no API calls here).

Sections follow the plan's Daily Standup Format; the Progress Tracking checklist is ticked from
real task outcomes: a ChecklistItem is ticked when a task run named after its step completed
inside a run of its PlanDay's flow (on its environment, if it names one) that did not fail —
a failed run rolled back what it applied, so its completed tasks prove nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runbook.plan import ENVIRONMENTS, PLAN, ChecklistItem, PlanDay

BLOCKING = {"FAILED", "CRASHED", "PAUSED"}
IN_PROGRESS = {"RUNNING", "PENDING", "CANCELLING"}
VOID = {"FAILED", "CRASHED", "CANCELLED", "CANCELLING"}   # runs whose work was undone


@dataclass(frozen=True)
class RunInfo:
    """The fields of a Prefect FlowRun the report needs."""
    id: str
    name: str
    flow_name: str
    state_type: str                  # StateType value: COMPLETED, FAILED, PAUSED, SCHEDULED, ...
    state_name: str
    message: str | None
    start_time: datetime | None
    expected_start_time: datetime | None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def environment(self) -> str | None:
        env = self.parameters.get("environment")
        return str(env) if env else None

    @property
    def target(self) -> str | None:
        """The fleet target (targets.toml) the run acted on, if any."""
        name = self.parameters.get("target")
        return str(name) if name else None

    @property
    def label(self) -> str:
        day = _day_of(self.flow_name)
        what = f"{day.week} {day.day} {day.title}" if day else self.flow_name
        where = f"{self.target}, {self.environment}" if self.target else self.environment
        return f"{what} ({where})" if where else what


@dataclass(frozen=True)
class TaskInfo:
    flow_run_id: str
    name: str                        # Prefect task run name: "<step>-<suffix>"
    state_type: str

    @property
    def step(self) -> str:
        return step_of(self.name)


def step_of(task_run_name: str) -> str:
    """Prefect names a task run "<task name>-<up to 3 chars of its dynamic key>"; steps may
    contain '-' themselves ("code:old-names-a1b"), so strip exactly the last suffix."""
    return task_run_name.rsplit("-", 1)[0] if "-" in task_run_name else task_run_name


@dataclass
class Standup:
    since: datetime | None
    completed: list[str]
    in_progress: list[str]
    blocked: list[str]
    next: list[str]
    checklist: list[tuple[PlanDay, list[tuple[ChecklistItem, bool]]]]
    fleet: list[str] = field(default_factory=list)

    def ticked(self) -> set[tuple[str, str]]:
        """(PlanDay key, item text) of every ticked box: what tests and callers compare."""
        return {(d.key, i.text) for d, items in self.checklist for i, ok in items if ok}


def _day_of(flow_name: str) -> PlanDay | None:
    return next((d for d in PLAN if d.flow_name == flow_name), None)


def _reason(run: RunInfo) -> str:
    msg = (run.message or "").strip().splitlines()[0][:300] if run.message else ""
    if run.state_type == "PAUSED":
        return "paused awaiting approval" + (f": {msg}" if msg else "")
    return f"{run.state_name.lower()}: {msg}" if msg else run.state_name.lower()


def tick(plan: Iterable[PlanDay], runs: Iterable[RunInfo], tasks: Iterable[TaskInfo]
         ) -> list[tuple[PlanDay, list[tuple[ChecklistItem, bool]]]]:
    by_id = {r.id: r for r in runs}
    done: set[tuple[str, str, str | None]] = set()     # (flow name, step, environment)
    for t in tasks:
        run = by_id.get(t.flow_run_id)
        if t.state_type == "COMPLETED" and run and run.state_type not in VOID:
            done.add((run.flow_name, t.step, run.environment))
    out = []
    for day in plan:
        items = [(i, any((day.flow_name, i.step, env) in done
                         for env in ([i.environment] if i.environment else (*ENVIRONMENTS, None))))
                 for i in day.checklist]
        out.append((day, items))
    return out


def _completed_line(run: RunInfo, tasks: list[TaskInfo]) -> str:
    day = _day_of(run.flow_name)
    steps = {t.step for t in tasks if t.flow_run_id == run.id and t.state_type == "COMPLETED"}
    items = [i.text for i in (day.checklist if day else ())
             if i.step in steps and (not i.environment or i.environment == run.environment)]
    return f"{run.label}: " + (", ".join(items) if items else "completed")


def build(runs: list[RunInfo], tasks: list[TaskInfo], *, since: datetime | None,
          now: datetime, all_runs: list[RunInfo] | None = None,
          all_tasks: list[TaskInfo] | None = None, plan: tuple[PlanDay, ...] = PLAN) -> Standup:
    """`runs`/`tasks`: since the last standup (the sections). `all_runs`/`all_tasks`: the
    whole history of the plan's flows (the checklist; defaults to runs/tasks)."""
    def recent(r: RunInfo) -> bool:
        t = r.start_time or r.expected_start_time
        return since is None or (t is not None and t >= since)

    window = sorted((r for r in runs if r.state_type != "SCHEDULED" and recent(r)),
                    key=lambda r: r.start_time or r.expected_start_time or now)
    completed = [_completed_line(r, tasks) for r in window if r.state_type == "COMPLETED"]
    in_progress = []
    for r in window:
        if r.state_type in IN_PROGRESS:
            running = [t.step for t in tasks if t.flow_run_id == r.id and t.state_type == "RUNNING"]
            in_progress.append(r.label + (f": {', '.join(running)}" if running else f": {r.state_name.lower()}"))
    blocked = []
    for r in window:
        if r.state_type not in BLOCKING:
            continue
        later_fix = r.state_type != "PAUSED" and any(
            o.flow_name == r.flow_name and o.environment == r.environment and o.target == r.target
            and o.state_type == "COMPLETED"
            and (o.start_time or now) > (r.start_time or now) for o in window)
        if not later_fix:    # a failure fixed by a later green run of the same flow no longer blocks
            blocked.append(f"{r.label}: {_reason(r)}")
    checklist = tick(plan, all_runs if all_runs is not None else runs,
                     all_tasks if all_tasks is not None else tasks)
    nxt = []
    for day, items in checklist:
        todo = [i.text + (f" ({i.environment})" if i.environment else "") for i, ok in items if not ok]
        if todo:
            nxt.append(f"{day.week} {day.day} {day.title}: " + ", ".join(todo))
            break
    for r in sorted((r for r in runs if r.state_type == "SCHEDULED"),
                    key=lambda r: r.expected_start_time or now):
        at = r.expected_start_time.strftime("%Y-%m-%d %H:%M UTC") if r.expected_start_time else "unscheduled"
        nxt.append(f"{r.label}: scheduled for {at}")
    return Standup(since, completed, in_progress, blocked, nxt, checklist,
                   fleet_lines(all_runs if all_runs is not None else runs))


def _when(run: RunInfo) -> datetime:
    return run.start_time or run.expected_start_time or datetime.min.replace(tzinfo=UTC)


def fleet_lines(runs: Iterable[RunInfo]) -> list[str]:
    """Per plan day rolled out on fleet targets: each target's latest run state."""
    latest: dict[tuple[str, str], RunInfo] = {}
    for r in runs:
        if r.target and r.state_type != "SCHEDULED":
            key = (r.flow_name, r.target)
            if key not in latest or _when(r) > _when(latest[key]):
                latest[key] = r
    out = []
    for flow_name in dict.fromkeys(f for f, _t in latest):
        day = _day_of(flow_name)
        what = f"{day.week} {day.day} {day.title}" if day else flow_name
        states = [f"{target}: {r.state_name.lower()}" for (f, target), r in sorted(latest.items()) if f == flow_name]
        out.append(f"{what}: " + ", ".join(states))
    return out


def to_markdown(s: Standup) -> str:
    def section(mark: str, title: str, lines: list[str]) -> list[str]:
        if not lines:
            return [f"{mark} **{title}:** None", ""]
        return [f"{mark} **{title}:**", "", *[f"- {line}" for line in lines], ""]

    head = f"# Daily standup (since {s.since:%Y-%m-%d %H:%M UTC})" if s.since else "# Daily standup"
    out = [head, ""]
    out += section("✅", "Completed", s.completed)
    out += section("🔄", "In Progress", s.in_progress)
    out += section("⏳", "Blocked", s.blocked)
    out += section("📋", "Next", s.next)
    if s.fleet:
        out += section("🌍", "Fleet", s.fleet)
    out += ["## 📊 Progress Tracking"]
    week = None
    for day, items in s.checklist:
        if day.week != week:
            week = day.week
            out += ["", f"### {week} Progress"]
        out += ["", f"**{day.day}: {day.title}**"]
        out += [f"- [{'x' if ok else ' '}] {i.text}" for i, ok in items]
    return "\n".join(out) + "\n"


def to_slack_text(s: Standup) -> str:
    """The plan's four-line format, one line per section (Slack's fallback text)."""
    def join(lines: list[str]) -> str:
        return "; ".join(lines) if lines else "None"
    done = sum(ok for _d, items in s.checklist for _i, ok in items)
    total = sum(len(items) for _d, items in s.checklist)
    return "\n".join([f"✅ Completed: {join(s.completed)}", f"🔄 In Progress: {join(s.in_progress)}",
                      f"⏳ Blocked: {join(s.blocked)}", f"📋 Next: {join(s.next)}",
                      f"📊 Progress: {done}/{total} checklist items"])
