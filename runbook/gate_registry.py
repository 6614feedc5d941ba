"""The inventory of gates: every function that produces a gate verdict registers here, so the
inventory (docs/gates.md) is read from the code and CI can demand a failing test for each.

    @gate("preflight:long-transactions", checks="no transaction open long enough to block DDL",
          runs_in="every plan day's preflight")
    def long_transactions(...): ...

A test proving the gate can fail carries ``@pytest.mark.gate_fails("preflight:long-transactions")``.
Names are the GateResult names, or their stable prefix when the name carries a table or a
migration id (``"parity"`` for ``parity:lots``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class GateInfo:
    name: str          # GateResult name, or its stable prefix
    checks: str        # what must hold, in words
    runs_in: str       # where it runs (plan day / flow / command)
    function: str      # module:qualname that produces it


GATES: dict[str, GateInfo] = {}


def gate(name: str, *, checks: str, runs_in: str) -> Callable[[F], F]:
    """Register the decorated function as the producer of gate ``name``."""
    def register(fn: F) -> F:
        info = GateInfo(name, checks, runs_in, f"{fn.__module__}:{fn.__qualname__}")
        existing = GATES.get(name)
        if existing is not None and existing.function != info.function:
            raise ValueError(f"gate {name!r} registered twice: {existing.function} and {info.function}")
        GATES[name] = info
        return fn
    return register
