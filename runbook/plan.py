"""The plan registry: the plan's days in order, the flow that carries each out, and the
plan's Progress Tracking checklist with the step whose real outcome ticks each box."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from runbook.errors import RunbookError


@dataclass(frozen=True)
class ChecklistItem:
    text: str              # the plan's wording
    step: str              # the flow step (task name) whose completion ticks it
    environment: str | None = None   # only a run on this environment ticks it


@dataclass(frozen=True)
class PlanDay:
    key: str               # CLI name
    flow_name: str         # Prefect flow name
    entrypoint: str        # module:function
    week: str
    day: str
    title: str
    checklist: tuple[ChecklistItem, ...] = field(default_factory=tuple)

    def load(self):
        module, func = self.entrypoint.split(":")
        return getattr(importlib.import_module(module), func)


PLAN: tuple[PlanDay, ...] = (
    PlanDay("week0-day1-2", "week0-day1-2-standardize-fields", "runbook.flows.week0.day1_2:standardize_fields",
            "Week 0", "Day 1-2", "Database Field Standardization", (
                ChecklistItem("Migration 014 created", "preflight"),
                ChecklistItem("Migration 014 tested on staging", "014_standardize_quantity_fields:rehearsal"),
                ChecklistItem("Migration 014 run on production", "014_standardize_quantity_fields:apply", "production"),
                ChecklistItem("Backend code updated (51 files)", "code:rename-fields"),
                ChecklistItem("Pattern JSON files updated", "code:old-names"),
                ChecklistItem("Validation complete", "smoke"),
            )),
    PlanDay("week0-day3-4", "week0-day3-4-integrity-pooling", "runbook.flows.week0.day3_4:integrity_and_pooling",
            "Week 0", "Day 3-4", "Database Integrity + Connection Pooling", (
                ChecklistItem("Migration 015 created", "preflight"),
                ChecklistItem("Migration 015 tested on staging", "015_add_fk_constraints:rehearsal"),
                ChecklistItem("Migration 015 run on production", "015_add_fk_constraints:apply", "production"),
                ChecklistItem("Connection pooling configured", "gate:pool-health"),
                ChecklistItem("Database indexes added", "gate:fk-indexes"),
                ChecklistItem("Validation complete", "smoke"),
            )),
    PlanDay("week0-day5", "week0-day5-security-fixes", "runbook.flows.week0.day5:security_fixes",
            "Week 0", "Day 5", "Security Fixes", (
                ChecklistItem("`eval()` replaced with safe evaluator", "gate:no-eval"),
                ChecklistItem("Authorization checking added", "gate:authorization"),
                ChecklistItem("Security testing complete", "gate:escape-corpus"),
                ChecklistItem("Validation complete", "smoke"),
            )),
)


def by_key(key: str) -> PlanDay:
    for day in PLAN:
        if key in (day.key, day.flow_name):
            return day
    raise RunbookError(f"unknown flow {key!r}; choose one of: {', '.join(d.key for d in PLAN)}")
