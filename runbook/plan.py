"""The plan registry: the plan's days in order, the flow that carries each out, and the
plan's Progress Tracking checklist with the step whose real outcome ticks each box."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Literal, get_args

from runbook.errors import RunbookError

# The environments a flow runs on, in the order a change goes through them.
Environment = Literal["staging", "production"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)

# The runbook's migrations (triads under migrations/), by the plan's numbering.
MIGRATION_014 = "014_standardize_quantity_fields"
MIGRATION_015 = "015_add_fk_constraints"
MIGRATION_016 = "016_add_indexes"
MIGRATION_017 = "017_contract_quantity_fields"
# a later migration whose verify.sql contradicts an earlier one's (017 drops what 014 keeps)
SUPERSEDED_BY = {MIGRATION_014: MIGRATION_017}

# Operations flows (not plan days): their Prefect flow names.
VERIFICATION_FLOW = "verification"
STANDUP_FLOW = "standup-report"
CONTRACT_FLOW = "contract-quantity-fields"
ROLLBACK_MIGRATION_FLOW = "rollback-migration"
ROLLBACK_CODE_FLOW = "rollback-code"
ROLLOUT_FLOW = "fleet-rollout"


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
    migrations: tuple[str, ...] = ()
    checklist: tuple[ChecklistItem, ...] = field(default_factory=tuple)
    change_set: str | None = None    # a change-set day: the default change_ref (the team's branch)
    needs_redis: bool = False        # its code caches in Redis (REDIS_URL, else redis-server on PATH)

    def load(self):
        module, func = self.entrypoint.split(":")
        return getattr(importlib.import_module(module), func)


def migration_checklist(migration_id: str) -> tuple[ChecklistItem, ...]:
    """The plan's three boxes of a migration: created, tested on staging, run on production."""
    number = migration_id[:3]
    return (ChecklistItem(f"Migration {number} created", "preflight"),
            ChecklistItem(f"Migration {number} tested on staging", f"{migration_id}:rehearsal"),
            ChecklistItem(f"Migration {number} run on production", f"{migration_id}:apply", "production"))


WEEK0_DAY1_2 = PlanDay(
    "week0-day1-2", "week0-day1-2-standardize-fields", "runbook.flows.week0.day1_2:standardize_fields",
    "Week 0", "Day 1-2", "Database Field Standardization", (MIGRATION_014,), (
        *migration_checklist(MIGRATION_014),
        ChecklistItem("Backend code updated (51 files)", "code:rename-fields"),
        ChecklistItem("Pattern JSON files updated", "code:old-names"),
        ChecklistItem("Validation complete", "smoke"),
    ))
WEEK0_DAY3_4 = PlanDay(
    "week0-day3-4", "week0-day3-4-integrity-pooling", "runbook.flows.week0.day3_4:integrity_and_pooling",
    "Week 0", "Day 3-4", "Database Integrity + Connection Pooling", (MIGRATION_015, MIGRATION_016), (
        *migration_checklist(MIGRATION_015),
        ChecklistItem("Connection pooling configured", "gate:pool-health"),
        ChecklistItem("Database indexes added", "gate:fk-indexes"),
        ChecklistItem("Validation complete", "smoke"),
    ))
WEEK0_DAY5 = PlanDay(
    "week0-day5", "week0-day5-security-fixes", "runbook.flows.week0.day5:security_fixes",
    "Week 0", "Day 5", "Security Fixes", (), (
        ChecklistItem("`eval()` replaced with safe evaluator", "gate:no-eval"),
        ChecklistItem("Authorization checking added", "gate:authorization"),
        ChecklistItem("Security testing complete", "gate:escape-corpus"),
        ChecklistItem("Validation complete", "smoke"),
    ))

# The plan has no Progress Tracking list for Week 1: its boxes are the Week 1 Success Criteria
# and the validation lines of Tasks 4.1-4.3.
WEEK1_DAY3_5 = PlanDay(
    "week1-day3-5", "week1-day3-5-pattern-system", "runbook.flows.week1.day3_5:pattern_system",
    "Week 1", "Days 3-5", "Backend Pattern System Preparation", (), (
        ChecklistItem("Pattern JSON files updated with standardized field names", "gate:pattern-names"),
        ChecklistItem("Panel definitions in backend JSON", "gate:panel-datapaths"),
        ChecklistItem("Pydantic schemas created", "gate:input-models"),
        ChecklistItem("Pattern responses include panel metadata", "gate:panel-parity"),
        ChecklistItem("Pattern execution works correctly", "smoke"),
    ))

# Weeks 3-4 are engineering work carried as change sets (the team's branch, merged gated); their
# boxes are the plan's Week 3 / Week 4 Success Criteria, each ticked by the gate that proves it.
WEEK3_DAY1_2 = PlanDay(
    "week3-day1-2", "week3-day1-2-reliability", "runbook.flows.week3.day1_2:reliability_fixes",
    "Week 3", "Days 1-2", "Reliability Fixes", (), (
        ChecklistItem("Timeout mechanism working", "gate:timeout"),
        ChecklistItem("Cancellation support working", "gate:cancellation"),
        ChecklistItem("Template substitution fixed", "gate:template"),
    ), change_set="plan/week3-day1-2")
WEEK3_DAY3_4 = PlanDay(
    "week3-day3-4", "week3-day3-4-data-integrity", "runbook.flows.week3.day3_4:data_integrity_fixes",
    "Week 3", "Days 3-4", "Data Integrity Fixes", (), (
        ChecklistItem("Validation blocking errors", "gate:blocking-validation"),
        ChecklistItem("Transaction management working", "gate:transactions"),
        ChecklistItem("Input validation at API boundaries", "gate:input-validation"),
        ChecklistItem("Rate limiting on external APIs", "gate:rate-limiting"),
    ), change_set="plan/week3-day3-4")
WEEK3_DAY5 = PlanDay(
    "week3-day5", "week3-day5-error-handling", "runbook.flows.week3.day5:error_handling",
    "Week 3", "Day 5", "Error Handling Standardization", (), (
        ChecklistItem("Error handling standardized", "gate:error-shape"),
        ChecklistItem("Logging standardized", "gate:logging"),
        ChecklistItem("Resources back to baseline", "gate:resources"),
    ), change_set="plan/week3-day5")

WEEK4_DAY3_4 = PlanDay(
    "week4-day3-4", "week4-day3-4-performance", "runbook.flows.week4.day3_4:performance_optimisation",
    "Week 4", "Days 3-4", "Performance Optimisation", (), (
        ChecklistItem("N+1 queries fixed", "gate:n-plus-one"),
        ChecklistItem("Pattern execution caching added", "gate:cache"),
        ChecklistItem("Performance monitoring added", "gate:monitoring"),
        ChecklistItem("Synchronous operations optimized", "gate:async"),
    ), change_set="plan/week4-day3-4", needs_redis=True)

PLAN: tuple[PlanDay, ...] = (WEEK0_DAY1_2, WEEK0_DAY3_4, WEEK0_DAY5, WEEK1_DAY3_5,
                             WEEK3_DAY1_2, WEEK3_DAY3_4, WEEK3_DAY5, WEEK4_DAY3_4)


def by_key(key: str) -> PlanDay:
    for day in PLAN:
        if key in (day.key, day.flow_name):
            return day
    raise RunbookError(f"unknown flow {key!r}; choose one of: {', '.join(d.key for d in PLAN)}")
