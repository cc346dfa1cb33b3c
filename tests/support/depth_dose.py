"""Reading depth-dose curves the way a physicist does: the distal 80 % point, the plateau."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def r80(depths: Sequence[float], dose: Sequence[float]) -> float:
    """The depth beyond the peak where the dose falls to 80 % of its maximum (interpolated)."""
    z = np.asarray(depths, dtype=float)
    d = np.asarray(dose, dtype=float)
    peak = int(np.argmax(d))
    level = 0.8 * d[peak]
    beyond = np.nonzero(d[peak:] < level)[0]
    if beyond.size == 0:
        raise ValueError("the dose never falls below 80 % of its peak")
    k = peak + int(beyond[0])
    # Linear interpolation between the last bin above the level and the first below it.
    return float(z[k - 1] + (d[k - 1] - level) * (z[k] - z[k - 1]) / (d[k - 1] - d[k]))


def plateau_ratio(
    depths: Sequence[float], first: Sequence[float], second: Sequence[float], lo: float, hi: float
) -> float:
    """The largest relative difference of two curves' mean doses in 1 cm windows of [lo, hi]."""
    z = np.asarray(depths, dtype=float)
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    worst = 0.0
    for start in np.arange(lo, hi - 1.0 + 1e-9, 1.0):
        window = (z >= start) & (z < start + 1.0)
        worst = max(worst, abs(a[window].mean() / b[window].mean() - 1.0))
    return worst
