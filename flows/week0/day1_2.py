"""Week 0, Day 1-2 of the plan: Database Field Standardization (migration 014)."""
from __future__ import annotations

import inspect

from runbook.context import RunContext
from runbook.expectations.week0.day1_2 import old_names_gate, parity_gates
from runbook.parameters import BackfillWorkers, BatchBudgetMs, CommitMs, WalRateMbS
from runbook.plan import MIGRATION_014, WEEK0_DAY1_2
from runbook.tasks.code.transforms import RENAME_FIELDS
from runbook.tasks.database import migration_files
from runbook.tasks.database.pacing import PaceLimits
from runbook.tasks.steps.approval import approval_step
from runbook.tasks.steps.code_update import code_update
from runbook.tasks.steps.core import Step, gate_step
from runbook.tasks.steps.day import smoke_step
from runbook.tasks.steps.day_flow import plan_day_flow
from runbook.tasks.steps.migration import backup_step, migration_step, rehearsal_step


def steps(ctx: RunContext) -> list[Step]:
    m014 = migration_files.load(MIGRATION_014)
    return [
        backup_step(),
        rehearsal_step(m014, parity_gates),
        approval_step("migration 014 (standardize quantity fields)"),
        migration_step(m014, parity_gates),
        code_update(RENAME_FIELDS),
        gate_step("code:old-names", old_names_gate),
        smoke_step("smoke"),
    ]


# the backfill's pace (tasks/database/pacing.py): a batch may hold rows and WAL this long before
# writers get through (0 = fixed batches of batch_size); how many sessions walk a table at once
# (each over its own blocks); an optional cap on its WAL rate; how slow a batch's commit (the WAL
# fsync writers queue behind) may be before the backfill rests
PACE_PARAMETERS = [
    inspect.Parameter("backfill_batch_budget_ms", inspect.Parameter.KEYWORD_ONLY, default=20.0,
                      annotation=BatchBudgetMs),
    inspect.Parameter("backfill_workers", inspect.Parameter.KEYWORD_ONLY, default=2,
                      annotation=BackfillWorkers),
    inspect.Parameter("backfill_max_wal_mb_s", inspect.Parameter.KEYWORD_ONLY, default=None,
                      annotation=WalRateMbS | None),
    inspect.Parameter("backfill_max_commit_ms", inspect.Parameter.KEYWORD_ONLY, default=PaceLimits().max_commit_ms,
                      annotation=CommitMs | None),
]

standardize_fields = plan_day_flow(
    WEEK0_DAY1_2, steps, code_updates=[RENAME_FIELDS], parameters=PACE_PARAMETERS,
    description="Week 0, Day 1-2: Database field standardization. Migration 014 (expand: "
                "quantity_open/quantity_original and asof_date beside the old columns, synced), "
                "parity gate, backend code + pattern JSON rename, grep gate, 13-pattern smoke.")
