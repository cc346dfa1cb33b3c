"""Estimators and pages: the result objects of spec/results.md §2–§4, checked and looked up.

An estimator is ``{name, metadata, pages}``; a page is ``{dimensions, data, axis_dim1..D,
metadata}`` with an optional Cyclotron ``error``. Objects stay plain JSON dicts: they are read
from and written to files unchanged, so a class per object would only be copied in and out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

# Far above any real run (tens of estimators, a few pages each); a bound on what one
# document may make us walk through.
MAX_ESTIMATORS = 10_000
MAX_PAGES = 10_000

ESTIMATOR_KEYS = frozenset({"name", "metadata", "pages"})
PAGE_KEYS = frozenset({"dimensions", "data", "error", "metadata"})
_UNSIGNED = re.compile(r"[0-9]+")

# page_normalized 4: phase-space records, exempt from the values layout (§4).
CONCATENATED = 4

E = TypeVar("E", bound=Mapping[str, Any])


class EstimatorError(ValueError):
    """An estimator list that breaks results.md; the message names the estimator and page."""


def core_name(name: str) -> str:
    """The name without one trailing ``_`` (older readers report ``z_profile_``)."""
    return name[:-1] if name.endswith("_") else name


def find_estimator(estimators: Iterable[E], name: str) -> E | None:
    """The estimator called ``name``, else one whose name differs by a trailing ``_``."""
    candidates = list(estimators)
    for estimator in candidates:
        if estimator.get("name") == name:
            return estimator
    variants = {name + "_", core_name(name)} - {name}
    for estimator in candidates:
        if estimator.get("name") in variants:
            return estimator
    return None


def page_number(page: Mapping[str, Any]) -> int:
    """The page's ``metadata.page_number`` as an integer (the page must be validated)."""
    return int(page["metadata"]["page_number"])


def page_normalization(page: Mapping[str, Any]) -> int | None:
    """The integer value of ``metadata.page_normalized``; None when missing or not an integer."""
    text = page["metadata"].get("page_normalized")
    if isinstance(text, str) and _UNSIGNED.fullmatch(text.strip()):
        return int(text)
    return None


def validate_estimators(obj: object) -> list[dict[str, Any]]:
    """Check a list of estimators against results.md §2–§4 and return a checked copy.

    The copy is shallow (value lists are shared with ``obj``); a 0-D page written ``[[v]]`` by
    older writers comes back as ``[v]``. Raises EstimatorError naming what is wrong.
    """
    if not isinstance(obj, list) or not obj:
        raise EstimatorError("estimators must be a non-empty list")
    if len(obj) > MAX_ESTIMATORS:
        raise EstimatorError(f"too many estimators: {len(obj)} (at most {MAX_ESTIMATORS})")
    checked: list[dict[str, Any]] = []
    names: set[str] = set()
    pages_seen = 0
    for index, estimator in enumerate(obj):
        where = _estimator_label(estimator, index)
        if not isinstance(estimator, dict):
            raise EstimatorError(f"{where}: must be an object")
        _check_keys(estimator, ESTIMATOR_KEYS, ESTIMATOR_KEYS, where)
        name = estimator["name"]
        if not isinstance(name, str) or not name:
            raise EstimatorError(f"{where}: name must be a non-empty string")
        if name in names:
            raise EstimatorError(f"{where}: name is used by another estimator")
        names.add(name)
        _check_metadata(estimator["metadata"], where)
        pages = estimator["pages"]
        if not isinstance(pages, list) or not pages:
            raise EstimatorError(f"{where}: pages must be a non-empty list")
        pages_seen += len(pages)
        if pages_seen > MAX_PAGES:
            raise EstimatorError(f"too many pages: more than {MAX_PAGES} in all")
        checked_pages = [
            _checked_page(page, f"{where}, pages[{i}]") for i, page in enumerate(pages)
        ]
        checked.append({**estimator, "pages": checked_pages})
    return checked


def _estimator_label(estimator: object, index: int) -> str:
    if isinstance(estimator, dict) and isinstance(estimator.get("name"), str):
        return f"estimator {estimator['name']!r}"
    return f"estimators[{index}]"


def _check_keys(
    obj: dict[str, Any], required: frozenset[str], allowed: frozenset[str], where: str
) -> None:
    missing = sorted(required - obj.keys())
    if missing:
        raise EstimatorError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(str(key) for key in obj.keys() - allowed)
    if unknown:
        raise EstimatorError(f"{where}: unknown keys {', '.join(unknown)}")


def _check_metadata(metadata: object, where: str) -> None:
    if not isinstance(metadata, dict):
        raise EstimatorError(f"{where}: metadata must be an object")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise EstimatorError(f"{where}: metadata {key} must be a string")


def _checked_page(page: object, where: str) -> dict[str, Any]:
    if not isinstance(page, dict):
        raise EstimatorError(f"{where}: must be an object")
    dimensions = page.get("dimensions")
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 0:
        raise EstimatorError(f"{where}: dimensions must be an integer >= 0")
    axis_keys: list[str] = []
    for k in range(1, dimensions + 1):  # stops at the first gap, however large dimensions is
        if f"axis_dim{k}" not in page:
            raise EstimatorError(f"{where}: missing axis_dim{k}")
        axis_keys.append(f"axis_dim{k}")
    allowed = PAGE_KEYS | set(axis_keys)  # axis_dimK for K > dimensions is refused as unknown
    _check_keys(page, PAGE_KEYS - {"error"}, allowed, where)
    _check_metadata(page["metadata"], where)
    number = page["metadata"].get("page_number")
    if not isinstance(number, str) or not _UNSIGNED.fullmatch(number):
        raise EstimatorError(f"{where}: metadata page_number must be an integer text")
    where = f"{where} (page_number {number})"

    lengths = [len(_values(page[key], f"{where}, {key}")) for key in axis_keys]
    data = page["data"]
    values = _values(data, f"{where}, data")
    if not (isinstance(data.get("name"), str) and isinstance(data.get("unit"), str)):
        raise EstimatorError(f"{where}: data name and unit must be strings")
    concatenated = page_normalization(page) == CONCATENATED
    if dimensions == 0 and len(values) == 1 and isinstance(values[0], list) and not concatenated:
        values = values[0]  # [[v]] from older writers (a one-record phase space stays a list)
    if not concatenated:
        if len(values) != math.prod(lengths):
            raise EstimatorError(
                f"{where}: {len(values)} values, but the axes hold {math.prod(lengths)} bins"
            )
        if not all(_is_number_or_null(v) for v in values):
            raise EstimatorError(f"{where}: data values must be numbers or null")
    if "error" in page:
        errors = _values(page["error"], f"{where}, error")
        if len(errors) != len(values) or not all(_is_number_or_null(v) for v in errors):
            raise EstimatorError(f"{where}: error must hold one number or null per data value")
    return {**page, "data": {**data, "values": values}}


def _values(part: object, where: str) -> list[Any]:
    if not isinstance(part, dict) or not isinstance(part.get("values"), list):
        raise EstimatorError(f"{where}: must be an object with a values list")
    values: list[Any] = part["values"]
    return values


def _is_number_or_null(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
