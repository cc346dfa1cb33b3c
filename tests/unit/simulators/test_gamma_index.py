"""The gamma index of tests/support/gamma.py, on distributions whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from support.gamma import gamma_index, gamma_pass_rate

Z = np.arange(400) * 0.05  # cm, 0.5 mm bins
PEAK = np.exp(-(((Z - 10.0) / 2.0) ** 2))


def shifted(values: np.ndarray, by_cm: float) -> np.ndarray:
    return np.interp(Z - by_cm, Z, values)


@pytest.mark.parametrize(
    ("evaluated", "rate"),
    [
        (PEAK, 1.0),
        (shifted(PEAK, 0.15), 1.0),  # 1.5 mm: within the distance criterion
        (PEAK * 1.019, 1.0),  # 1.9 % of the maximum: within the dose criterion
    ],
)
def test_what_lies_within_both_criteria_passes(evaluated: np.ndarray, rate: float) -> None:
    assert gamma_pass_rate(PEAK, evaluated, [0.05]) == rate


def test_what_lies_beyond_them_fails_where_the_curve_gives_no_way_out() -> None:
    moved = gamma_index(PEAK, shifted(PEAK, 0.25), [0.05])
    assert moved.max() > 1.0 and gamma_pass_rate(PEAK, shifted(PEAK, 0.25), [0.05]) < 0.5
    # 3 % too high fails on the flat top, where no nearby point is lower
    scaled = gamma_index(PEAK, PEAK * 1.03, [0.05])
    assert scaled[200] > 1.0 and scaled[150] <= 1.0


def test_two_dimensions_and_the_low_dose_threshold() -> None:
    lateral = np.exp(-(np.linspace(-2, 2, 80) ** 2))
    image = np.outer(lateral, PEAK)
    assert gamma_pass_rate(image, np.roll(image, 3, axis=0), [0.05, 0.05]) == 1.0
    assert gamma_pass_rate(image, np.roll(image, 5, axis=1), [0.05, 0.05]) < 0.99
    # Points below 10 % of the maximum are not evaluated: noise there changes nothing.
    noisy = image + np.where(image < 0.05, 0.04, 0.0)
    assert gamma_pass_rate(image, noisy, [0.05, 0.05]) == 1.0
    with pytest.raises(ValueError, match="shapes"):
        gamma_index(image, PEAK, [0.05, 0.05])
