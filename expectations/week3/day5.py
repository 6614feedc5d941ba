"""Week 3 Day 5 gates (Error Handling Standardization), one module each: the error shape on
every route and status (error_shape.py), JSON logs without secrets (json_logs.py), resources
back to baseline after errors, timeouts and cancellations (resources.py)."""
from __future__ import annotations

from runbook.expectations.week3.error_shape import error_shape_check
from runbook.expectations.week3.json_logs import logging_check
from runbook.expectations.week3.resources import resources_check

__all__ = ["error_shape_check", "logging_check", "resources_check"]
