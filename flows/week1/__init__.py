"""Week 1 of the plan: Pattern System Preparation (Days 3-5). One module per plan day."""
from runbook.flows.week1.day3_5 import pattern_system

__all__ = ["pattern_system"]
