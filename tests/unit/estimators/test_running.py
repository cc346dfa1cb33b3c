"""Running sums (estimators/running.py): folded task by task, in any order, they give the full
merge of results.md §6 to 1e-12; stored results are binary, reproducible, and read as JSON."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cyclotron.estimators import merge_task_results
from cyclotron.estimators.running import RunningSums, load_sums, save_sums
from cyclotron.estimators.store import (
    RESULTS_FILE,
    fold_task,
    merge_job_files,
    partial_estimators,
    read_results,
    results_path,
    write_results,
    write_task_estimators,
)

Task = tuple[int, list[dict[str, Any]]]


def _page(number: int, values: list[Any], normalized: str, **extra: Any) -> dict[str, Any]:
    page: dict[str, Any] = {
        "dimensions": 1,
        "data": {"name": f"Q{number}", "unit": "MeV", "values": values},
        "axis_dim1": {"name": "Z", "unit": "cm", "values": [float(i) for i in range(len(values))]},
        "metadata": {"page_number": str(number), "page_normalized": normalized},
    }
    page.update(extra)
    return page


def _task(index: int, rng: random.Random, bins: int = 50) -> Task:
    """Estimators of every page kind, with nulls, infinities and an engine error."""
    primaries = rng.choice([1000, 2000, 3333])
    dose: list[Any] = [1.0 + 0.01 * rng.gauss(0, 1) + i for i in range(bins)]
    dose[3] = None if index == 2 else dose[3]
    dose[4] = math.inf if index == 1 else dose[4]
    pages = [
        _page(2, dose, "2", error={"name": "e", "unit": "MeV", "values": [0.1] * bins}),
        _page(0, [float(index)] * bins, "0"),
        _page(1, [float(rng.randint(0, 9)) for _ in range(bins)], "1"),
        _page(3, [rng.random() for _ in range(bins)], "3"),
        {**_page(4, [[index, 1.5]], "4"), "dimensions": 0},
    ]
    del pages[4]["axis_dim1"]
    slab = {"name": "slab_", "metadata": {"number_of_primaries": str(primaries)}, "pages": pages}
    other = {
        "name": "other",
        "metadata": {"number_of_primaries": str(primaries), "task": str(index)},
        "pages": [_page(0, [rng.random() for _ in range(7)], "")],
    }
    listed = [other, slab] if index % 2 else [slab, other]
    if index == 5:
        listed = [slab]  # one task without the estimator "other"
    return index, listed


def _close(a: Any, b: Any) -> None:
    """Equal JSON-like objects, floats to 1e-12 relative."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-300)
    else:
        assert a == b


def _folded(tasks: list[Task], order: list[int]) -> RunningSums:
    sums = RunningSums()
    by_index = dict(tasks)
    for index in order:
        sums.fold(index, by_index[index])
    return sums


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_folded_in_any_order_equal_the_full_merge(seed: int) -> None:
    rng = random.Random(seed)
    tasks = [_task(i, rng) for i in range(8)]
    order = list(range(8))
    rng.shuffle(order)
    sums = _folded(tasks, order)
    assert sums.spoiled is None
    _close(sums.merged(), merge_task_results(tasks))
    # JSON text as the faces write it: same keys, same nulls
    merged = json.loads(json.dumps(sums.merged()))
    assert [e["name"] for e in merged] == [e["name"] for e in merge_task_results(tasks)]


def test_one_task_keeps_its_own_values_and_error() -> None:
    tasks = [_task(3, random.Random(4))]
    assert _folded(tasks, [3]).merged() == merge_task_results(tasks)


def test_a_lower_task_folded_last_gives_the_maps_and_metadata() -> None:
    rng = random.Random(5)
    tasks = [_task(i, rng) for i in (4, 0, 7)]
    _close(_folded(tasks, [4, 7, 0]).merged(), merge_task_results(tasks))


def test_a_task_that_does_not_fit_spoils_the_sums() -> None:
    rng = random.Random(6)
    tasks = [_task(0, rng), _task(1, rng)]
    tasks[1][1][0]["pages"][0]["axis_dim1"]["values"][0] = 99.0
    sums = _folded(tasks, [0, 1])
    assert sums.spoiled is not None


def test_sums_survive_the_disk_and_a_task_folds_once(tmp_path: Path) -> None:
    rng = random.Random(7)
    tasks = [_task(i, rng) for i in range(3)]
    sums = _folded(tasks, [2, 0])
    save_sums(tmp_path / "s.npz", sums)
    loaded = load_sums(tmp_path / "s.npz")
    loaded.fold(0, tasks[0][1])
    loaded.fold(1, tasks[1][1])
    _close(loaded.merged(), merge_task_results(tasks))


def _job(tmp_path: Path, count: int, seed: int) -> list[Task]:
    rng = random.Random(seed)
    tasks = [_task(i, rng) for i in range(count)]
    for index, estimators in tasks:
        write_task_estimators(tmp_path / "tasks" / str(index), estimators)
    return tasks


def _complete(job_dir: Path, order: list[int], failed: Sequence[int] = ()) -> None:
    """Fold tasks as the server does when they complete in ``order``."""
    ended = set(failed)
    every = set(order) | ended
    for index in order:
        fold_task(job_dir, index, every - ended - {index})
        ended.add(index)


def test_job_merge_from_the_sums_is_idempotent_and_atomic(tmp_path: Path) -> None:
    tasks = _job(tmp_path, 6, 8)
    _complete(tmp_path, [3, 1, 0, 5, 2, 4])
    fold_task(tmp_path, 1)  # folded once only
    assert load_sums(tmp_path / ".cyclotron" / "running.npz").tasks == list(range(6))
    first = merge_job_files(tmp_path, range(6))
    stored = (tmp_path / "results" / RESULTS_FILE).read_bytes()
    assert merge_job_files(tmp_path, range(6)) == first
    assert (tmp_path / "results" / RESULTS_FILE).read_bytes() == stored
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [RESULTS_FILE]
    _close(read_results(tmp_path / "results"), merge_task_results(tasks))


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [4, 2, 0, 3, 1], [1, 0, 4, 3, 2]])
def test_results_do_not_depend_on_the_order_tasks_end(tmp_path: Path, order: list[int]) -> None:
    """Task 2 failed; the others complete in ``order``: the same bytes every time."""
    _job(tmp_path / "reference", 5, 12)
    _complete(tmp_path / "reference", [0, 1, 3, 4], failed=[2])
    merge_job_files(tmp_path / "reference", [0, 1, 3, 4])
    tasks = _job(tmp_path / "job", 5, 12)
    _complete(tmp_path / "job", [i for i in order if i != 2], failed=[2])
    merge_job_files(tmp_path / "job", [0, 1, 3, 4])
    reference = (tmp_path / "reference" / "results" / RESULTS_FILE).read_bytes()
    assert (tmp_path / "job" / "results" / RESULTS_FILE).read_bytes() == reference
    done = [t for t in tasks if t[0] != 2]
    _close(read_results(tmp_path / "job" / "results"), merge_task_results(done))


def test_job_merge_falls_back_to_the_task_files(tmp_path: Path) -> None:
    """Sums that hold a task not completed are not used; tasks never folded are read."""
    tasks = _job(tmp_path, 4, 9)
    _complete(tmp_path, [0, 1])
    merge_job_files(tmp_path, [0, 2])
    _close(read_results(tmp_path / "results"), merge_task_results([tasks[0], tasks[2]]))
    _close(partial_estimators(tmp_path, [0]), merge_task_results(tasks[:1]))


def test_partial_results_agree_with_the_final_merge(tmp_path: Path) -> None:
    """A running 10-task job: after each completion, the partial results are the merge of the
    tasks completed so far, and the last ones are the job's results."""
    tasks = _job(tmp_path, 10, 10)
    order = [9, 0, 4, 2, 7, 1, 3, 8, 6, 5]
    for count in range(1, len(order) + 1):
        done = order[:count]
        fold_task(tmp_path, done[-1], set(range(10)) - set(done))
        expected = merge_task_results([t for t in tasks if t[0] in done])
        _close(partial_estimators(tmp_path, done), expected)
    merge_job_files(tmp_path, order)
    assert read_results(tmp_path / "results") == partial_estimators(tmp_path, order)


def test_results_stored_as_json_before_are_still_read(tmp_path: Path) -> None:
    tasks = _job(tmp_path, 2, 11)
    merged = merge_task_results(tasks)
    write_results(tmp_path / "results", merged)
    assert results_path(tmp_path / "results").name == "estimators.json.gz"
    assert read_results(tmp_path / "results") == merged


def test_one_task_keeps_an_engine_error_on_any_page() -> None:
    error = {"name": "e", "unit": "MeV", "values": [0.5, 0.5]}
    pages = [_page(0, [1.0, 2.0], "1", error=error), _page(1, [3.0, 4.0], "0", error=error)]
    tasks: list[Task] = [
        (0, [{"name": "s", "metadata": {"number_of_primaries": "5"}, "pages": pages}])
    ]
    assert _folded(tasks, [0]).merged() == merge_task_results(tasks)
