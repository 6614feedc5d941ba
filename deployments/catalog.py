"""Every flow the runbook serves, as one explicit list: one line per flow.

Plan days come from the plan registry (runbook/plan.py), so a new plan day is served as soon as
it is registered; the support flows (verification, standup, contract, rollback) are listed here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from runbook.plan import PLAN, PlanDay

# which configurable cron (deployments/settings.py) a deployment runs on
ScheduleName = Literal["verify", "standup"]


@dataclass(frozen=True)
class DeploymentSpec:
    entrypoint: str                   # "package.module:flow_function"
    name: str                         # deployment name (shown as FLOW_NAME/NAME in the UI)
    tags: tuple[str, ...]
    description: str                  # markdown; the flow's own description is appended
    schedule: ScheduleName | None = None
    # one scheduled run per parameter set (e.g. one per environment)
    schedule_runs: tuple[dict, ...] = ({},)
    parameters: dict = field(default_factory=dict)   # defaults of UI runs


def slug(text: str) -> str:
    """'Week 0' -> 'week0', 'Day 1-2' -> 'day1-2' (the tags the UI filters by)."""
    return re.sub(r"[^a-z0-9-]", "", text.lower().replace(" ", ""))


def plan_tags(day: PlanDay) -> tuple[str, ...]:
    steps = [item.step for item in day.checklist]
    kinds = [kind for kind, hit in (
        ("migration", any(s.endswith((":apply", ":rehearsal")) for s in steps)),
        ("code", any(s.startswith("code:") for s in steps)),
        ("security", "security" in day.title.lower()),
    ) if hit]
    return (slug(day.week), slug(day.day), "plan", *kinds)


def plan_description(day: PlanDay) -> str:
    lines = [f"**{day.week}, {day.day}: {day.title}** (backend refactoring plan)", "",
             "Plan checklist items this flow ticks (by the step that proves each):"]
    lines += [f"- {item.text}: step `{item.step}`"
              + (f" (on {item.environment} only)" if item.environment else "") for item in day.checklist]
    return "\n".join(lines)


def plan_spec(day: PlanDay) -> DeploymentSpec:
    return DeploymentSpec(day.entrypoint, day.key, plan_tags(day), plan_description(day))


SUPPORT: tuple[DeploymentSpec, ...] = (
    # both environments nightly: the contract flow counts green verification days per environment
    DeploymentSpec("runbook.flows.verification:verification", "nightly", ("verification", "scheduled"),
                   "Re-checks every gate that should hold so far (the verification period the "
                   "plan's expand/contract needs before old columns are dropped).",
                   schedule="verify", schedule_runs=({"environment": "staging"},
                                                     {"environment": "production"})),
    DeploymentSpec("runbook.flows.standup:standup", "weekday-mornings", ("standup", "report", "scheduled"),
                   "The plan's Daily Standup Format and Progress Tracking checklist, from real "
                   "flow and task run states.", schedule="standup"),
    DeploymentSpec("runbook.flows.contract:contract_quantity_fields", "contract-014",
                   ("week0", "day1-2", "contract", "migration"),
                   "Week 0, Day 1-2 contract phase: the old quantity columns go only after the "
                   "verification period is green."),
    DeploymentSpec("runbook.flows.rollback:rollback_migration", "rollback-migration", ("rollback", "migration"),
                   "The plan's rollback procedure for one migration, with proof of restore."),
    DeploymentSpec("runbook.flows.rollback:rollback_code", "rollback-code", ("rollback", "code"),
                   "The plan's rollback procedure for a run's code changes."),
    DeploymentSpec("runbook.flows.rollout:rollout", "fleet", ("rollout", "fleet"),
                   "One plan day across every target of targets.toml, on the work pool."),
)


def catalog() -> list[DeploymentSpec]:
    return [plan_spec(day) for day in PLAN] + list(SUPPORT)
