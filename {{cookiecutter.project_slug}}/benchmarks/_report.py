"""Benchmark targets, reported the same way by every benchmark: PASS or MISS, value, target."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import NamedTuple

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class Target(NamedTuple):
    """A measured value and the bound it should meet, such as ``create() vs bare >= 0.95x``."""

    name: str
    value: float
    comparison: str
    bound: float
    unit: str = "x"

    @property
    def passed(self) -> bool:
        return _COMPARISONS[self.comparison](self.value, self.bound)

    def line(self) -> str:
        """``PASS  create() vs bare generate: 1.02x (target >= 0.95x)``."""
        verdict = "PASS" if self.passed else "MISS"
        return (
            f"{verdict}  {self.name}: {self.value:.3g}{self.unit} "
            f"(target {self.comparison} {self.bound:g}{self.unit})"
        )


def print_targets(targets: Sequence[Target]) -> dict[str, str]:
    """Print one line per target; return ``{name: "PASS" or "MISS"}`` for the JSON results."""
    print("  targets:")
    for target in targets:
        print(f"    {target.line()}")
    return {target.name: "PASS" if target.passed else "MISS" for target in targets}
