"""Week 4 Days 3-4 gates (Performance Optimisation), one module each: no N+1 (n_plus_one.py),
the pattern cache (cache.py), metrics and slow-query logs (monitoring.py), /health under load
(async_health.py), and the p95 rollback trigger (no_regression.py)."""
from __future__ import annotations

from runbook.expectations.week4.async_health import async_check
from runbook.expectations.week4.cache import cache_check
from runbook.expectations.week4.monitoring import monitoring_check
from runbook.expectations.week4.n_plus_one import n_plus_one_check
from runbook.expectations.week4.no_regression import no_regression_check

__all__ = ["async_check", "cache_check", "monitoring_check", "n_plus_one_check", "no_regression_check"]
