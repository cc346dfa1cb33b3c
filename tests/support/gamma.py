"""The gamma index (Low et al., Med. Phys. 25, 1998) of a dose distribution against a reference.

Global: the dose criterion is a fraction of the reference's maximum, and reference points
below ``threshold`` of that maximum are not evaluated (AAPM TG-218's 10 % low-dose
threshold). The evaluated distribution is interpolated linearly onto a grid ``refine`` times
finer than its own, and each reference point takes the smallest Γ over the points of that grid
within the distance criterion (beyond it Γ > 1, so the pass rate needs no farther search).
Both distributions are on regular grids of the same axes (bin centres, cm).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def gamma_pass_rate(
    reference: npt.ArrayLike,
    evaluated: npt.ArrayLike,
    spacing: Sequence[float],
    *,
    dose: float = 0.02,
    distance: float = 0.2,
    threshold: float = 0.1,
    refine: int = 5,
) -> float:
    """The fraction of evaluated reference points (≥ ``threshold`` of its maximum) with Γ ≤ 1.

    ``spacing`` is the bin width along each axis (cm), ``dose`` the dose criterion as a
    fraction of the reference's maximum, ``distance`` the distance criterion (cm).
    """
    gamma = gamma_index(reference, evaluated, spacing, dose=dose, distance=distance,
                        refine=refine)  # fmt: skip
    ref = np.asarray(reference, dtype=np.float64)
    chosen = ref >= threshold * ref.max()
    return float(np.mean(gamma[chosen] <= 1.0))


def gamma_index(
    reference: npt.ArrayLike,
    evaluated: npt.ArrayLike,
    spacing: Sequence[float],
    *,
    dose: float = 0.02,
    distance: float = 0.2,
    refine: int = 5,
) -> FloatArray:
    """Γ at every reference point, capped at a value above 1 where no point within the
    distance criterion passes (only Γ ≤ 1 is exact)."""
    ref = np.asarray(reference, dtype=np.float64)
    ev = np.asarray(evaluated, dtype=np.float64)
    if ref.shape != ev.shape or ref.ndim != len(spacing):
        raise ValueError(f"shapes {ref.shape} and {ev.shape} on {len(spacing)} axes")
    tolerance = dose * ref.max()
    steps = [float(s) / refine for s in spacing]
    # Offsets (in fine steps) within the distance criterion along every axis.
    reach = [int(np.ceil(distance / step)) for step in steps]
    best = np.full(ref.shape, 2.0**2)
    for offset in itertools.product(*(range(-r, r + 1) for r in reach)):
        squared = sum((o * step) ** 2 for o, step in zip(offset, steps, strict=True))
        if squared > distance**2:
            continue
        shifted, inside = _shifted(ev, [o / refine for o in offset])
        value = squared / distance**2 + ((shifted - ref) / tolerance) ** 2
        best = np.where(inside, np.minimum(best, value), best)
    result: FloatArray = np.sqrt(best)
    return result


def _shifted(values: FloatArray, shift: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    """``values`` interpolated linearly at every index plus ``shift`` (in bins), and where
    that point lies within the grid."""
    result = values
    inside = np.ones(values.shape, dtype=bool)
    for axis, s in enumerate(shift):
        n = values.shape[axis]
        whole = int(np.floor(s))
        fraction = s - whole
        index = np.arange(n) + whole
        low = np.take(result, np.clip(index, 0, n - 1), axis=axis)
        high = np.take(result, np.clip(index + 1, 0, n - 1), axis=axis)
        result = low * (1.0 - fraction) + high * fraction
        position = np.arange(n) + s
        shape = [1] * values.ndim
        shape[axis] = n
        inside = inside & ((position >= 0) & (position <= n - 1)).reshape(shape)
    return result, inside
