"""Reading the editor project's plain values, refused with the item named when malformed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cyclotron.simulators.converters import ConversionError

Vector = tuple[float, float, float]


def number(value: Any, what: str) -> float:
    """A finite JSON number (not a boolean) as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConversionError(f"{what} must be a number, not {value!r}")
    return float(value)


def count(value: Any, what: str, *, most: int | None = None) -> int:
    """A whole number of at least 1 (and at most ``most``)."""
    amount = number(value, what)
    if amount < 1 or amount != int(amount) or (most is not None and amount > most):
        bound = f" from 1 to {most}" if most is not None else " of at least 1"
        raise ConversionError(f"{what} must be a whole number{bound}, not {value!r}")
    return int(amount)


def vector(values: Any, what: str) -> Vector:
    """Three numbers."""
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) != 3:
        raise ConversionError(f"{what} must be three numbers, not {values!r}")
    x, y, z = (number(value, what) for value in values)
    return (x, y, z)
