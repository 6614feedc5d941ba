"""Week 3, Days 3-4 gates (Data Integrity Fixes), one module each: blocking validation,
transactions, input validation, rate limiting with retry and circuit breaker."""
from __future__ import annotations

from runbook.expectations.week3.blocking_validation import (
    blocking_validation_gate as blocking_validation_check,
)
from runbook.expectations.week3.input_validation import (
    input_validation_gate as input_validation_check,
)
from runbook.expectations.week3.rate_limiting import rate_limiting_gate as rate_limiting_check
from runbook.expectations.week3.transactions import transactions_gate as transactions_check

__all__ = ["blocking_validation_check", "input_validation_check", "rate_limiting_check",
           "transactions_check"]
