"""Merging task outputs (spec/results.md §5–§7): values, errors, metadata, order, refusals."""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cyclotron.estimators import MergeError, merge_task_results, order_by_outputs

LoadEstimators = Callable[[str], list[dict[str, Any]]]
Task = tuple[int, list[dict[str, Any]]]

UNEQUAL = [3334, 3333, 3333]


def page(
    number: int,
    values: list[Any],
    *,
    normalized: str | None = "2",
    axes: Sequence[list[float]] = (),
    name: str = "DOSE",
    error: list[float | None] | None = None,
) -> dict[str, Any]:
    """A page with bin-centre axes ``axes`` (first fastest); no axes makes it 0-D."""
    metadata = {"page_number": str(number), "name": name}
    if normalized is not None:
        metadata["page_normalized"] = normalized
    result: dict[str, Any] = {
        "dimensions": len(axes),
        "data": {"name": name, "unit": "MeV/g/prim", "values": values},
        "metadata": metadata,
    }
    for k, axis in enumerate(axes, start=1):
        result[f"axis_dim{k}"] = {"name": f"Position {k}", "unit": "cm", "values": axis}
    if error is not None:
        result["error"] = {"name": "stderr", "unit": "MeV/g/prim", "values": error}
    return result


def estimator(
    pages: list[dict[str, Any]], primaries: int, *, name: str = "slab", **metadata: str
) -> dict[str, Any]:
    return {
        "name": name,
        "metadata": {"file_corename": name, "number_of_primaries": str(primaries), **metadata},
        "pages": pages,
    }


def closed_form(xs: Sequence[float], ws: Sequence[float]) -> tuple[float, float]:
    """μ and SE of §6.2, written out term by term."""
    total = sum(ws)
    total_sq = sum(w * w for w in ws)
    mean = sum(w * x for w, x in zip(ws, xs, strict=True)) / total
    spread = sum(w * (x - mean) ** 2 for w, x in zip(ws, xs, strict=True))
    variance = spread / (total - total_sq / total)
    return mean, math.sqrt(variance) * math.sqrt(total_sq) / total


def only_page(result: list[dict[str, Any]]) -> dict[str, Any]:
    [merged] = result
    [merged_page] = merged["pages"]
    return merged_page


def test_worked_example_of_the_spec() -> None:
    """§6.3 and checklist item 8: tasks 0, 1, 3 completed; failed task 2 is not passed in."""
    rows = {0: (1000, [2.0, 0.40], 120), 1: (2000, [2.6, 0.50], 250), 3: (1000, [3.0, 0.30], 130)}
    tasks: list[Task] = [
        (
            task,
            [
                estimator(
                    [
                        page(0, dose, axes=[[0.5, 1.5]]),
                        page(1, [count], normalized="1", name="COUNT"),
                        page(2, [1], normalized="0", name="MATERIAL"),
                    ],
                    primaries,
                )
            ],
        )
        for task, (primaries, dose, count) in rows.items()
    ]
    [slab] = merge_task_results(tasks)
    dose, count, material = slab["pages"]
    assert dose["data"]["values"] == pytest.approx([2.55, 0.425], rel=1e-12)
    exact = [math.sqrt(510 / 2500 * 6e6) / 4000, math.sqrt(27.5 / 2500 * 6e6) / 4000]
    assert dose["error"]["values"] == pytest.approx(exact, rel=1e-12)
    # The spec prints them to 6 significant digits, 1.2e-6 away from the exact first one.
    assert dose["error"]["values"] == pytest.approx([0.276586, 0.0642262], rel=2e-6)
    assert dose["error"]["unit"] == "MeV/g/prim"
    assert count["data"]["values"] == [500]
    assert material["data"]["values"] == [1]
    assert "error" not in count and "error" not in material
    assert slab["metadata"]["number_of_primaries"] == "4000"
    assert slab["metadata"]["file_counter"] == "3"
    assert slab["metadata"]["page_count"] == "3"
    assert slab["metadata"]["error_type"] == "1"


@pytest.mark.parametrize("normalized", ["2", "3", None, "7"])
def test_mean_pages_match_the_closed_forms(normalized: str | None) -> None:
    rng = random.Random(12)
    ys, zs = [0.5, 1.5, 2.5], [1.0, 3.0]
    values = [[rng.uniform(0.1, 10.0) for _ in range(6)] for _ in UNEQUAL]
    tasks: list[Task] = [
        (t, [estimator([page(0, values[t], normalized=normalized, axes=[ys, zs])], w)])
        for t, w in enumerate(UNEQUAL)
    ]
    merged = only_page(merge_task_results(tasks))
    for b in range(6):
        mean, error = closed_form([values[t][b] for t in range(3)], UNEQUAL)
        assert merged["data"]["values"][b] == pytest.approx(mean, rel=1e-9)
        assert merged["error"]["values"][b] == pytest.approx(error, rel=1e-9)
    assert merged["axis_dim1"]["values"] == ys and merged["axis_dim2"]["values"] == zs


def test_equal_weights_give_the_sample_standard_error() -> None:
    xs = [1.0, 1.5, 4.0, 2.25]
    tasks: list[Task] = [(t, [estimator([page(0, [x])], 500)]) for t, x in enumerate(xs)]
    merged = only_page(merge_task_results(tasks))
    assert merged["data"]["values"] == pytest.approx([statistics.mean(xs)], rel=1e-12)
    assert merged["error"]["values"] == pytest.approx([statistics.stdev(xs) / 2], rel=1e-9)


def test_weights_are_the_primaries_each_task_simulated() -> None:
    """Type-2 mean = Σ raw sums / Σ primaries: one run with all the primaries."""
    raw = [(3334, 6668.0), (3333, 3333.0), (3333, 0.0)]  # (primaries, raw sum)
    tasks: list[Task] = [(t, [estimator([page(0, [s / w])], w)]) for t, (w, s) in enumerate(raw)]
    merged = only_page(merge_task_results(tasks))
    assert merged["data"]["values"] == pytest.approx([10001.0 / 10000], rel=1e-12)


def test_counters_are_summed_without_error() -> None:
    tasks: list[Task] = [
        (t, [estimator([page(0, [t, 10.5, 0], normalized="1", axes=[[1, 2, 3]])], w)])
        for t, w in enumerate(UNEQUAL)
    ]
    merged = only_page(merge_task_results(tasks))
    assert merged["data"]["values"] == [3.0, 31.5, 0.0]
    assert "error" not in merged


def test_type_0_takes_the_lowest_task_index_whatever_the_order() -> None:
    tasks: list[Task] = [
        (7, [estimator([page(0, [7, 7], normalized="0", axes=[[0, 1]])], 10)]),
        (2, [estimator([page(0, [2, None], normalized="0", axes=[[0, 1]])], 10)]),
        (5, [estimator([page(0, [5, 5], normalized="0", axes=[[0, 1]])], 10)]),
    ]
    merged = only_page(merge_task_results(tasks))
    assert merged["data"]["values"] == [2.0, None]
    assert "error" not in merged


def test_type_4_concatenates_in_task_order() -> None:
    tasks: list[Task] = [
        (3, [estimator([page(0, [{"e": 3.0}], normalized="4")], 10)]),
        (1, [estimator([page(0, [{"e": 1.0}, {"e": 1.5}], normalized="4")], 10)]),
        (2, [estimator([page(0, [], normalized="4")], 10)]),
    ]
    merged = only_page(merge_task_results(tasks))
    assert merged["data"]["values"] == [{"e": 1.0}, {"e": 1.5}, {"e": 3.0}]
    assert "error" not in merged


@pytest.mark.parametrize("normalized", ["1", "2", "3"])
def test_a_null_bin_in_any_task_is_null_in_the_result(normalized: str) -> None:
    columns = [[1.0, None, 2.0, math.inf], [2.0, 3.0, math.nan, 1.0], [3.0, 1.0, 1.0, -math.inf]]
    tasks: list[Task] = [
        (t, [estimator([page(0, xs, normalized=normalized, axes=[[0, 1, 2, 3]])], w)])
        for t, (xs, w) in enumerate(zip(columns, UNEQUAL, strict=True))
    ]
    merged = only_page(merge_task_results(tasks))
    assert merged["data"]["values"][1:] == [None, None, None]
    assert merged["data"]["values"][0] is not None
    if normalized != "1":
        assert merged["error"]["values"][1:] == [None, None, None]
        assert merged["error"]["values"][0] is not None


def test_a_single_task_is_returned_as_it_was_without_error() -> None:
    values = [0.1 + 0.2, 1 / 3, None]
    merged = merge_task_results([(0, [estimator([page(0, values, axes=[[1, 2, 3]])], 3333)])])
    assert merged[0]["pages"][0]["data"]["values"] == values
    assert "error" not in merged[0]["pages"][0]
    assert merged[0]["metadata"]["file_counter"] == "1"
    assert merged[0]["metadata"]["number_of_primaries"] == "3333"
    assert merged[0]["metadata"]["error_type"] == "0"


def test_the_engines_error_is_kept_for_one_task_and_replaced_for_two() -> None:
    def task(t: int, x: float) -> Task:
        return (t, [estimator([page(0, [x, None], axes=[[0, 1]], error=[0.5, 0.5])], 100)])

    single = merge_task_results([task(0, 1.0)])
    assert single[0]["pages"][0]["error"]["values"] == [0.5, None]
    assert single[0]["metadata"]["error_type"] == "1"
    double = merge_task_results([task(0, 1.0), task(1, 3.0)])
    assert double[0]["pages"][0]["error"]["values"] == pytest.approx([1.0, None])


def test_metadata_comes_from_the_lowest_contributing_task() -> None:
    tasks: list[Task] = [
        (0, [estimator([page(0, [9.0])], 0, host="idle")]),  # no primaries: does not count
        (1, [estimator([page(0, [1.0])], 3334, host="first", page_count="9")]),
        (2, [estimator([page(0, [2.0])], 3333, host="second", file_counter="1")]),
    ]
    metadata = merge_task_results(tasks)[0]["metadata"]
    assert metadata == {
        "file_corename": "slab",
        "host": "first",
        "number_of_primaries": "6667",
        "file_counter": "2",
        "page_count": "1",
        "error_type": "1",
    }


def test_failed_and_absent_tasks_do_not_count() -> None:
    counted: list[Task] = [
        (0, [estimator([page(0, [1.0])], 3334), estimator([page(0, [5.0])], 3334, name="b")]),
        (2, [estimator([page(0, [2.0])], 3333), estimator([page(0, [6.0])], 3333, name="b")]),
    ]
    noise: list[Task] = [
        (1, [estimator([page(0, [99.0])], 0), estimator([page(0, [99.0])], -5, name="b")]),
        (3, [estimator([page(0, [99.0])], 3333, name="b")]),  # has no "slab"
        (4, []),
    ]
    merged = merge_task_results(counted + noise)
    slab = merge_task_results(counted)[0]
    assert merged[0] == slab
    assert slab["metadata"]["file_counter"] == "2"
    assert slab["pages"][0]["data"]["values"] == pytest.approx([(3334 + 2 * 3333) / 6667])
    assert merged[1]["metadata"]["file_counter"] == "3"
    assert merged[1]["metadata"]["number_of_primaries"] == "10000"


@pytest.mark.parametrize(
    "tasks",
    [
        [],
        [(0, [])],
        [(0, [estimator([page(0, [1.0])], 0)]), (1, [estimator([page(0, [1.0])], 0)])],
    ],
)
def test_no_contributing_task_fails_the_merge(tasks: list[Task]) -> None:
    with pytest.raises(MergeError) as caught:
        merge_task_results(tasks)
    assert caught.value.code == "tasks_failed"


def _two_tasks_differing(change: Callable[[dict[str, Any]], None]) -> list[Task]:
    pages = [page(0, [1.0, 2.0], axes=[[0.5, 1.5]]), page(1, [3.0], normalized="3")]
    second = estimator(copy.deepcopy(pages), 100)
    change(second)
    return [(0, [estimator(pages, 100)]), (1, [second])]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e["pages"][0]["axis_dim1"].update(values=[0.5, 1.6]),
            r"estimator 'slab', page 0: task 1 differs from task 0 in axis_dim1 values",
        ),
        (
            lambda e: e["pages"].pop(),
            r"estimator 'slab', page 1: in task 0 but not in task 1",
        ),
        (
            lambda e: e["pages"].append(page(5, [1.0])),
            r"estimator 'slab', page 5: in task 1 but not in task 0",
        ),
        (
            lambda e: e["pages"][1].update(page(1, [3.0], normalized="3", axes=[[1.0]])),
            r"estimator 'slab', page 1: task 1 differs from task 0 in dimensions \(1 != 0\)",
        ),
        (  # a different bin count (checklist item 11) shows in the axis first
            lambda e: e["pages"][0].update(page(0, [1.0, 2.0, 3.0], axes=[[0.5, 1.5, 2.5]])),
            r"estimator 'slab', page 0: task 1 differs from task 0 in axis_dim1 values",
        ),
        (
            lambda e: e["pages"][1]["metadata"].update(page_normalized="1"),
            r"estimator 'slab', page 1: task 1 differs from task 0 in page_normalized",
        ),
        (
            lambda e: e["pages"][1]["metadata"].update(page_number="0"),
            r"estimator 'slab', page 0: listed twice in task 1",
        ),
    ],
)
def test_mismatched_tasks_fail_the_merge(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(MergeError, match=message) as caught:
        merge_task_results(_two_tasks_differing(change))
    assert caught.value.code == "merge_failed"


def test_phase_space_pages_may_differ_in_length_but_not_in_layout() -> None:
    tasks: list[Task] = [
        (0, [estimator([page(0, [{"e": 1.0}], normalized="4")], 10)]),
        (1, [estimator([page(0, [{"e": 2.0}, {"e": 3.0}], normalized="4")], 10)]),
    ]
    assert len(only_page(merge_task_results(tasks))["data"]["values"]) == 3


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ([{"name": "slab"}], r"task 4: estimator 'slab': missing metadata, pages"),
        ([estimator([page(0, [1.0])], 10, number_of_primaries="many")], r"task 4, .*'many'"),
        (
            [estimator([page(0, [1.0])], 10), estimator([page(0, [1.0])], 10, name="slab_")],
            r"task 4: two estimators have the file core name 'slab'",
        ),
    ],
)
def test_unreadable_task_outputs_fail_the_merge(output: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(MergeError, match=message):
        merge_task_results([(0, [estimator([page(0, [1.0])], 10)]), (4, output)])


def test_tasks_given_twice_fail_the_merge() -> None:
    task: Task = (0, [estimator([page(0, [1.0])], 10)])
    with pytest.raises(MergeError, match="task 0 is given twice"):
        merge_task_results([task, task])


def test_estimators_are_matched_by_file_core_name_and_keep_the_first_tasks_order() -> None:
    def outputs(t: int) -> list[dict[str, Any]]:
        return [
            estimator([page(3, [1.0]), page(0, [2.0]), page(1, [3.0])], 10, name=f"peak{'_' * t}"),
            estimator([page(0, [4.0])], 10, name="z_profile_"),
        ]

    tasks: list[Task] = [(1, outputs(1)), (0, outputs(0)), (2, outputs(1)[::-1])]
    tasks.append((3, [estimator([page(0, [5.0])], 10, name="late")]))
    merged = merge_task_results(tasks)
    assert [e["name"] for e in merged] == ["peak", "z_profile", "late"]
    assert [e["metadata"]["file_counter"] for e in merged] == ["3", "3", "1"]
    assert [p["metadata"]["page_number"] for p in merged[0]["pages"]] == ["0", "1", "3"]
    assert [p["data"]["values"] for p in merged[0]["pages"]] == [[2.0], [3.0], [1.0]]


def test_the_order_tasks_arrive_in_does_not_matter() -> None:
    rng = random.Random(3)
    tasks: list[Task] = [
        (
            t,
            [
                estimator(
                    [
                        page(0, [rng.random() for _ in range(4)], axes=[[1, 2, 3, 4]]),
                        page(1, [rng.random()], normalized="1"),
                        page(2, [rng.random()], normalized="0"),
                        page(3, [{"t": t}], normalized="4"),
                    ],
                    rng.randint(1, 5000),
                )
            ],
        )
        for t in range(4)
    ]
    expected = merge_task_results(tasks)
    for order in itertools.permutations(tasks):
        assert merge_task_results(list(order)) == expected


def test_the_result_is_plain_json() -> None:
    tasks: list[Task] = [
        (
            t,
            [
                estimator(
                    [page(0, [1.0, None, t], axes=[[0, 1, 2]]), page(1, [t], normalized="1")], w
                )
            ],
        )
        for t, w in enumerate(UNEQUAL)
    ]
    merged = merge_task_results(tasks)
    json.dumps(merged, allow_nan=False)
    for merged_page in merged[0]["pages"]:
        for part in ("data", "error"):
            values = merged_page.get(part, {}).get("values", [])
            assert all(type(v) is float or v is None for v in values)
    assert all(isinstance(v, str) for v in merged[0]["metadata"].values())


def test_merging_real_results_gives_the_primaries_weighted_mean(
    yaptide_estimators: LoadEstimators,
) -> None:
    """ex1 (SHIELD-HIT12A) read as three tasks that ran 3334, 3333, 3333 primaries."""
    scales = [0.9, 1.0, 1.2]
    original = yaptide_estimators("ex1.json")
    tasks: list[Task] = []
    for t, (weight, scale) in enumerate(zip(UNEQUAL, scales, strict=True)):
        output = copy.deepcopy(original)
        for est in output:
            est["metadata"]["number_of_primaries"] = str(weight)
            for p in est["pages"]:
                p["data"]["values"] = [scale * v for v in p["data"]["values"]]
        tasks.append((t, output))

    merged = merge_task_results(tasks)

    assert [e["name"] for e in merged] == ["z_profile", "yz_profile", "entrance", "peak"]
    factor, factor_error = closed_form(scales, UNEQUAL)
    for est, source in zip(merged, original, strict=True):
        assert est["metadata"]["number_of_primaries"] == "10000"
        assert est["metadata"]["file_counter"] == "3"
        assert est["metadata"]["error_type"] == "1"
        assert est["metadata"]["page_count"] == str(len(source["pages"]))
        by_number = {int(p["metadata"]["page_number"]): p for p in source["pages"]}
        assert [int(p["metadata"]["page_number"]) for p in est["pages"]] == sorted(by_number)
        for p in est["pages"]:
            raw = by_number[int(p["metadata"]["page_number"])]["data"]["values"]
            assert p["data"]["values"] == pytest.approx([factor * v for v in raw], rel=1e-9)
            assert p["error"]["values"] == pytest.approx(
                [factor_error * abs(v) for v in raw], rel=1e-9, abs=1e-300
            )
    dose = merged[0]["pages"][0]
    assert dose["data"]["name"] == "DOSE" and len(dose["data"]["values"]) == 400
    assert merged[1]["pages"][0]["axis_dim2"]["name"] == "Position (Z)"


def test_outputs_name_and_order_the_estimators() -> None:
    estimators = [
        {"name": "peak", "metadata": {}, "pages": []},
        {"name": "z_profile_", "metadata": {}, "pages": []},
        {"name": "spare", "metadata": {}, "pages": []},
        {"name": "entrance", "metadata": {}, "pages": []},
    ]
    ordered = order_by_outputs(estimators, ["z_profile", "entrance", "missing", "peak_"])
    assert [e["name"] for e in ordered] == ["z_profile", "entrance", "peak_", "spare"]
    assert estimators[1]["name"] == "z_profile_"  # the input is not changed


def test_each_estimator_answers_one_output_only() -> None:
    estimators = [{"name": "a", "metadata": {}, "pages": []}]
    assert [e["name"] for e in order_by_outputs(estimators, ["a", "a_", "a"])] == ["a"]
    assert order_by_outputs(estimators, []) == estimators
