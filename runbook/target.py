"""What the runbook knows about the system it refactors, in one place.

Everything specific to the DawsOS backend — where its code lives in the checkout, the tables
and columns the plan changes, its API routes, its hot queries — is a field of one
`TargetDescription`. The product code reads these fields and names nothing of DawsOS itself;
the real backend and the demo target (built to carry the real one's facts) fill it alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class ColumnRename(NamedTuple):
    """A column the plan renames (Week 0, Day 1-2): table.old becomes table.new. Data: the
    runner reads the live catalog to decide what the expand phase does with it."""
    table: str
    old: str
    new: str


class ForeignKey(NamedTuple):
    """A link the plan constrains (Week 0, Task 2.1): child.column -> parent.id."""
    child: str
    column: str
    parent: str


@dataclass(frozen=True)
class HotQuery:
    """One of the target's common queries the plan's indexes must serve (Task 2.4):
    `query` has {column} placeholders filled from a row of `table`."""
    title: str
    table: str
    leading: tuple[str, ...]     # the index the query should use leads with these columns
    query: str


@dataclass(frozen=True)
class TargetDescription:
    # -- the checkout -------------------------------------------------------------------------
    backend: str                  # the backend's root folder in the repository
    schema_dir: str               # table DDL, the one definition of each table
    migrations_dir: str           # the target's own migration history
    patterns_dir: str             # the pattern JSON files
    orchestrator: str             # module with the pattern orchestrator (eval lives there)
    api_main: str                 # the ASGI app module
    database_module: str          # where the connection pool is created
    requirements: str             # the backend's pip requirements
    test_command: tuple[str, ...]  # the target's own test suite, run from the checkout's root
    frontend_registry: str        # the frontend's pattern registry (a JSON file or a JS literal)
    frontend_execute_call: str    # the frontend function that runs a pattern (returns the response)
    # -- the API ------------------------------------------------------------------------------
    execute_route: str            # POST, {pattern_id} placeholder
    all_patterns_right: str       # the right that grants every pattern
    # -- the database changes of Week 0 -------------------------------------------------------
    code_renames: dict[str, str]                  # Day 1-2: code names old -> new (014)
    column_renames: tuple[ColumnRename, ...]      # Day 1-2: database columns old -> new (014)
    first_runbook_migration: int                  # target history below this number is never rewritten
    foreign_keys: tuple[ForeignKey, ...]          # Day 3-4: what 015 constrains
    hot_queries: tuple[HotQuery, ...]             # Day 3-4: what 016's indexes must serve
    contract_table: str                           # the contract (017) drops these columns
    contract_columns: tuple[str, ...]
    contract_rewrites: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    # objects 017 itself rewrites or drops: (kind, name) as catalog queries report them
    # -- authentication and the process ------------------------------------------------------
    auth_secret_env: str = "AUTH_JWT_SECRET"      # the API's HS256 signing secret (env var)
    operator_role: str = "admin"                  # role of the runbook's own calls (holds every right)
    public_routes: tuple[str, ...] = ("/health",)  # open without a token; every other route needs one
    health_commit_field: str = "commit"           # /health names the commit the process runs
    # the only variables (besides the database URL and the secret) the API process is given
    # the name a managed API's database sessions carry (its DATABASE_URL's application_name, kept
    # when the URL names one): how the gates find them in pg_stat_activity, TCP or unix socket
    api_application_name: str = "dawsos-api"
    api_environment: tuple[str, ...] = (
        "PATH", "LANG", "LC_ALL", "TZ", "HOME", "DAWSOS_PATTERNS_DIR", "ANTHROPIC_API_KEY",
        "FMP_BASE_URL", "POLYGON_BASE_URL", "FRED_BASE_URL", "FMP_API_KEY", "POLYGON_API_KEY",
        "FRED_API_KEY")
    # a provider's limiter settings (Week 3 Task 6.4), e.g. POLYGON_RATE_PER_S: the rate gate's
    # probe API runs with a low limit so that any machine can offer calls faster than it
    provider_rate_setting: str = "{provider}_RATE_PER_S"
    provider_burst_setting: str = "{provider}_BURST"

    def history_excludes(self, migration_files: list[str]) -> list[str]:
        """Paths the rename and its gate leave alone: the schema DDL (it describes live tables,
        which keep their old columns until the contract) and the target's migration history
        before the runbook's first migration (history is never rewritten)."""
        older = sorted(f"{self.migrations_dir}/{name}" for name in migration_files
                       if name[:3].isdigit() and int(name[:3]) < self.first_runbook_migration)
        return [f"{self.schema_dir}/*", *older]


DAWSOS = TargetDescription(
    backend="backend",
    schema_dir="backend/db/schema",
    migrations_dir="backend/db/migrations",
    patterns_dir="backend/patterns",
    orchestrator="backend/app/core/pattern_orchestrator.py",
    api_main="backend/app/main.py",
    database_module="backend/app/core/database.py",
    requirements="backend/requirements.txt",
    test_command=("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", "backend/tests"),
    frontend_registry="patternRegistry",
    frontend_execute_call="executePattern",
    execute_route="/api/patterns/{pattern_id}/execute",
    all_patterns_right="patterns:execute",
    code_renames={"qty_open": "quantity_open", "qty_original": "quantity_original",
                  "as_of_date": "asof_date", "price_date": "asof_date"},
    column_renames=(ColumnRename("lots", "qty_open", "quantity_open"),
                    ColumnRename("lots", "qty_original", "quantity_original"),
                    ColumnRename("prices", "price_date", "asof_date"),
                    ColumnRename("portfolio_metrics", "as_of_date", "asof_date")),
    first_runbook_migration=14,
    foreign_keys=(ForeignKey("lots", "security_id", "securities"),
                  ForeignKey("transactions", "security_id", "securities")),
    hot_queries=(
        HotQuery("lots of one security in a portfolio", "lots", ("portfolio_id", "security_id"),
                 "SELECT id FROM lots WHERE portfolio_id = {portfolio_id} AND security_id = {security_id}"),
        HotQuery("a portfolio's transactions, newest first", "transactions",
                 ("portfolio_id", "transaction_date"),
                 "SELECT id FROM transactions WHERE portfolio_id = {portfolio_id} "
                 "ORDER BY transaction_date DESC LIMIT 50"),
    ),
    contract_table="lots",
    contract_columns=("qty_open", "qty_original"),
    contract_rewrites=frozenset({("trigger", "lots_sync_014 ON lots")}),
)
