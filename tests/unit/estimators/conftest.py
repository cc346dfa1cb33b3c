"""Real estimator lists from the shared YAPTIDE fixtures, back in their wire spelling."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

YAPTIDE = Path(__file__).parents[3] / ".." / "shared" / "fixtures" / "yaptide"

# Keys the YAPTIDE UI adds to what the server sent; not part of the wire format.
UI_ESTIMATOR_KEYS = {"scoringOutputJsonRef"}
UI_PAGE_KEYS = {"name", "filterRef"}

LoadEstimators = Callable[[str], list[dict[str, Any]]]


def snake_case(key: str) -> str:
    """``numberOfPrimaries`` → ``number_of_primaries``, ``axisDim1`` → ``axis_dim1``.

    Keys that already hold an underscore (``Tmax_MeV``) were never camelCased and stay.
    """
    if "_" in key:
        return key
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _wire_page(page: dict[str, Any]) -> dict[str, Any]:
    converted = {snake_case(k): v for k, v in page.items() if k not in UI_PAGE_KEYS}
    if isinstance(page.get("metadata"), dict):
        converted["metadata"] = {snake_case(k): v for k, v in page["metadata"].items()}
    return converted


def _wire_estimator(estimator: dict[str, Any]) -> dict[str, Any]:
    converted = {k: v for k, v in estimator.items() if k not in UI_ESTIMATOR_KEYS}
    if isinstance(estimator.get("metadata"), dict):
        converted["metadata"] = {snake_case(k): v for k, v in estimator["metadata"].items()}
    converted["pages"] = [_wire_page(page) for page in estimator["pages"]]
    return converted


@pytest.fixture
def yaptide_estimators() -> LoadEstimators:
    """Load ``estimators`` of a UI export (``ex1.json``, …) in snake_case; skip without fixtures."""
    if not YAPTIDE.is_dir():
        pytest.skip(f"shared fixtures not found at {YAPTIDE.resolve()}")

    def load(name: str) -> list[dict[str, Any]]:
        document = json.loads((YAPTIDE / name).read_text(encoding="utf-8"))
        return [_wire_estimator(estimator) for estimator in document["estimators"]]

    return load
