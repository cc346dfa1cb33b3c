"""Merging the estimators of a job's tasks into one result (spec/results.md §6, §7).

Each task's output is merged page by page by its ``page_normalized``: the lowest task's values
(0), the sum (1), concatenation (4), and otherwise the mean weighted by simulated primaries
with its standard error (§6.2). The merge is pure: callers read the task outputs and write the
result; a task that failed is simply not passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cyclotron.estimators.model import (
    CONCATENATED,
    EstimatorError,
    core_name,
    find_estimator,
    page_normalization,
    page_number,
    validate_estimators,
)

MERGE_FAILED = "merge_failed"
TASKS_FAILED = "tasks_failed"

FIRST = 0  # page_normalized: geometry maps, taken from the lowest task
SUM = 1  # counters

Floats = NDArray[np.float64]


class MergeError(Exception):
    """Task outputs that cannot be merged; ``code`` is the job error to record."""

    def __init__(self, message: str, code: str = MERGE_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class _Part:
    """One contributing task's estimator."""

    task: int
    weight: int
    estimator: dict[str, Any]


def merge_task_results(
    tasks: Sequence[tuple[int, Sequence[Mapping[str, Any]]]],
) -> list[dict[str, Any]]:
    """Merge ``(task index, estimators)`` pairs of completed tasks into one estimator list.

    Estimators come in the order of the lowest-index task's list (then any that only later
    tasks have), pages by ascending page number. Raises MergeError.
    """
    parts_by_key: dict[str, list[_Part]] = {}
    seen: set[int] = set()
    for task, estimators in sorted(tasks, key=lambda item: item[0]):
        if task in seen:
            raise MergeError(f"task {task} is given twice")
        seen.add(task)
        keys: set[str] = set()
        for estimator in _validated(task, estimators):
            key = _file_key(estimator)
            if key in keys:
                raise MergeError(f"task {task}: two estimators have the file core name {key!r}")
            keys.add(key)
            parts = parts_by_key.setdefault(key, [])
            weight = _weight(task, estimator)
            if weight > 0:
                parts.append(_Part(task, weight, estimator))
    if not parts_by_key:
        raise MergeError("no task produced estimators", TASKS_FAILED)
    return [_merge_estimator(key, parts) for key, parts in parts_by_key.items()]


def order_by_outputs(
    estimators: Sequence[Mapping[str, Any]], output_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Name and order estimators after the editor's ``scoringManager.outputs`` (§7).

    An output matches the estimator of its name, or of its name with a trailing ``_`` added or
    removed; estimators no output names follow in their own order, names unchanged.
    """
    remaining = list(estimators)
    ordered: list[dict[str, Any]] = []
    for name in output_names:
        match = find_estimator(remaining, name)
        if match is not None:
            remaining = [estimator for estimator in remaining if estimator is not match]
            ordered.append({**match, "name": name})
    return ordered + [dict(estimator) for estimator in remaining]


def _validated(task: int, estimators: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not estimators:
        return []  # an output without estimators contributes to none
    try:
        return validate_estimators(list(estimators))
    except EstimatorError as error:
        raise MergeError(f"task {task}: {error}") from None


def _file_key(estimator: Mapping[str, Any]) -> str:
    """What tasks are matched by: the file core name, without the trailing ``_`` of old readers."""
    corename = estimator["metadata"].get("file_corename") or estimator["name"]
    return core_name(str(corename))


def _weight(task: int, estimator: Mapping[str, Any]) -> int:
    """The primaries this task simulated, from its own output (§6.1 rule 2)."""
    text = estimator["metadata"].get("number_of_primaries")
    try:
        return int(text)
    except (TypeError, ValueError):
        raise MergeError(
            f"task {task}, estimator {estimator['name']!r}: "
            f"number_of_primaries {text!r} is not an integer"
        ) from None


def _merge_estimator(key: str, parts: list[_Part]) -> dict[str, Any]:
    where = f"estimator {key!r}"
    if not parts:
        raise MergeError(f"{where}: no completed task with primaries has it", TASKS_FAILED)
    pages_by_task = [_pages_by_number(part, where) for part in parts]
    expected = pages_by_task[0].keys()
    for part, pages in zip(parts[1:], pages_by_task[1:], strict=True):
        if pages.keys() != expected:
            odd = min(pages.keys() ^ expected)
            holder, other = (
                (parts[0].task, part.task) if odd in expected else (part.task, parts[0].task)
            )
            raise MergeError(f"{where}, page {odd}: in task {holder} but not in task {other}")
    weights = [part.weight for part in parts]
    merged_pages = [
        _merge_page(
            f"{where}, page {number}",
            [part.task for part in parts],
            weights,
            [pages[number] for pages in pages_by_task],
        )
        for number in sorted(expected)
    ]
    metadata = {
        **parts[0].estimator["metadata"],
        "number_of_primaries": str(sum(weights)),
        "file_counter": str(len(parts)),
        "page_count": str(len(merged_pages)),
        "error_type": "1" if any("error" in page for page in merged_pages) else "0",
    }
    return {"name": key, "metadata": metadata, "pages": merged_pages}


def _pages_by_number(part: _Part, where: str) -> dict[int, dict[str, Any]]:
    pages: dict[int, dict[str, Any]] = {}
    for page in part.estimator["pages"]:
        number = page_number(page)
        if number in pages:
            raise MergeError(f"{where}, page {number}: listed twice in task {part.task}")
        pages[number] = page
    return pages


def _merge_page(
    where: str, tasks: list[int], weights: list[int], pages: list[dict[str, Any]]
) -> dict[str, Any]:
    first = pages[0]
    kind = page_normalization(first)
    axes = [f"axis_dim{k}" for k in range(1, first["dimensions"] + 1)]
    for task, page in zip(tasks[1:], pages[1:], strict=True):
        _check_same_layout(f"{where}: task {task} differs from task {tasks[0]} in", first, page)

    error: Floats | None = None
    values: list[Any]
    if kind == CONCATENATED:
        values = [record for page in pages for record in page["data"]["values"]]
    else:
        x = np.array([_as_floats(page["data"]["values"]) for page in pages])
        merged, error = _aggregate(kind, x, np.array(weights, dtype=np.float64))
        if len(pages) == 1 and "error" in first:
            error = _as_floats(first["error"]["values"])  # the engine's own, for one task only
        if error is not None:
            error = np.where(np.isfinite(merged), error, np.nan)
        values = _to_json(merged)

    result: dict[str, Any] = {
        "dimensions": first["dimensions"],
        "data": {**first["data"], "values": values},
    }
    if error is not None:
        result["error"] = {
            "name": "stderr",
            "unit": first["data"]["unit"],
            "values": _to_json(error),
        }
    result.update({axis: first[axis] for axis in axes})
    result["metadata"] = dict(first["metadata"])
    return result


def _check_same_layout(where: str, first: Mapping[str, Any], page: Mapping[str, Any]) -> None:
    if page["dimensions"] != first["dimensions"]:
        raise MergeError(f"{where} dimensions ({page['dimensions']} != {first['dimensions']})")
    if page_normalization(page) != page_normalization(first):
        raise MergeError(f"{where} page_normalized")
    # Validated pages hold one value per bin, so equal axes also mean equal value counts.
    for k in range(1, first["dimensions"] + 1):
        if page[f"axis_dim{k}"]["values"] != first[f"axis_dim{k}"]["values"]:
            raise MergeError(f"{where} axis_dim{k} values")


def _aggregate(kind: int | None, x: Floats, w: Floats) -> tuple[Floats, Floats | None]:
    """Merged values and error of one page; rows of ``x`` are tasks, null bins are NaN.

    A non-finite bin in any task stays non-finite through the sum and the weighted mean
    (weights are positive), which is how null propagates (§6.1 rule 7).
    """
    if kind == FIRST:
        return x[0], None
    # inf - inf in a null bin is expected; numpy would warn about it.
    with np.errstate(invalid="ignore", over="ignore"):
        if kind == SUM:
            return x.sum(axis=0), None
        return _weighted_mean(x, w)


def _weighted_mean(x: Floats, w: Floats) -> tuple[Floats, Floats | None]:
    """Σw·x/W and, for two or more tasks, its standard error SE = s·√W2/W (§6.2)."""
    if len(w) == 1:
        return x[0], None  # exactly the task's values, not w·x/w
    total = w.sum()
    total_sq = (w * w).sum()
    mean: Floats = w @ x / total
    variance = w @ (x - mean) ** 2 / (total - total_sq / total)
    error: Floats = np.sqrt(variance * total_sq) / total
    return mean, error


def _as_floats(values: Sequence[Any]) -> Floats:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _to_json(values: Floats) -> list[float | None]:
    """Plain floats, with null for what is not finite (JSON has no NaN)."""
    return [v if math.isfinite(v) else None for v in values.tolist()]
