"""Latency statistics shared by the benchmark and the tests, so both summarise a run the same way."""

from __future__ import annotations

import math
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q % (0..100) of them at or below it; NaN for none.

    q * n / 100 rather than q / 100 * n: exact for a whole q, where 0.07 * 100 would round up to rank 8.
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered) / 100) - 1)]
