"""Week 0 of the plan: Foundation (5 days). One module per plan day, one @flow each."""
from runbook.flows.week0.day1_2 import standardize_fields
from runbook.flows.week0.day3_4 import integrity_and_pooling
from runbook.flows.week0.day5 import security_fixes

__all__ = ["integrity_and_pooling", "security_fixes", "standardize_fields"]
