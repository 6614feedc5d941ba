"""Week 0 of the plan: Foundation (5 days). One module per plan day, one @flow each."""
from flows.week0.day1_2 import standardize_fields

__all__ = ["standardize_fields"]
