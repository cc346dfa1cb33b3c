"""Checking estimator lists and finding estimators by name (spec/results.md §2–§4, §7)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from cyclotron.estimators import EstimatorError, core_name, find_estimator, validate_estimators
from cyclotron.estimators.model import MAX_ESTIMATORS

LoadEstimators = Callable[[str], list[dict[str, Any]]]

VALID: list[dict[str, Any]] = [
    {
        "name": "yz",
        "metadata": {"file_corename": "yz", "number_of_primaries": "100"},
        "pages": [
            {
                "dimensions": 2,
                "data": {"name": "DOSE", "unit": "MeV/g/prim", "values": [1, 2.5, None, 4, 5, 6]},
                "axis_dim1": {"name": "Position (Y)", "unit": "cm", "values": [0.5, 1.5, 2.5]},
                "axis_dim2": {"name": "Position (Z)", "unit": "cm", "values": [0.5, 1.5]},
                "metadata": {"page_number": "0", "page_normalized": "2"},
            },
            {
                "dimensions": 0,
                "data": {"name": "COUNT", "unit": "", "values": [[7]]},
                "metadata": {"page_number": "1", "page_normalized": "1"},
            },
        ],
    }
]


def test_accepts_a_valid_list_and_unwraps_old_zero_d_values() -> None:
    original = copy.deepcopy(VALID)
    checked = validate_estimators(original)
    assert checked[0]["pages"][1]["data"]["values"] == [7]
    assert checked[0]["pages"][0] == VALID[0]["pages"][0]
    assert original == VALID  # the argument is left as it was


@pytest.mark.parametrize("example", ["ex1.json", "ex6.json", "ex7.json"])
def test_accepts_every_real_estimator(yaptide_estimators: LoadEstimators, example: str) -> None:
    estimators = yaptide_estimators(example)
    checked = validate_estimators(estimators)
    assert [e["name"] for e in checked] == [e["name"] for e in estimators]
    assert sum(len(e["pages"]) for e in checked) == sum(len(e["pages"]) for e in estimators)


def test_refuses_a_real_export_without_metadata(yaptide_estimators: LoadEstimators) -> None:
    # The Geant4 example carries no metadata at all: not the wire format.
    with pytest.raises(EstimatorError, match=r"estimator '.*': missing metadata"):
        validate_estimators(yaptide_estimators("ex8.json"))


def test_refuses_ui_only_keys(yaptide_estimators: LoadEstimators) -> None:
    estimators = yaptide_estimators("ex1.json")
    estimators[0]["pages"][0]["filterRef"] = {"name": "Protons"}
    with pytest.raises(EstimatorError, match=r"'z_profile', pages\[0\].*unknown keys filterRef"):
        validate_estimators(estimators)


Breakage = Callable[[Any], Any]


def _set(path: str, value: Any) -> Breakage:
    """Set one key, given as ``pages.0.data.values`` (indices for lists)."""

    def apply(estimators: list[Any]) -> None:
        *parents, last = path.split(".")
        target: Any = estimators[0]
        for step in parents:
            target = target[int(step)] if isinstance(target, list) else target[step]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _delete(path: str) -> Breakage:
    def apply(estimators: list[Any]) -> None:
        *parents, last = path.split(".")
        target: Any = estimators[0]
        for step in parents:
            target = target[int(step)] if isinstance(target, list) else target[step]
        del target[last]

    return apply


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_set("name", ""), r"name must be a non-empty string"),
        (_set("metadata", []), r"estimator 'yz': metadata must be an object"),
        (_set("metadata.number_of_primaries", 100), r"metadata number_of_primaries must be a str"),
        (_set("pages", []), r"'yz': pages must be a non-empty list"),
        (_set("extra", 1), r"'yz': unknown keys extra"),
        (_delete("pages.0.metadata.page_number"), r"pages\[0\]: metadata page_number must be"),
        (_set("pages.0.metadata.page_number", "-1"), r"page_number must be an integer text"),
        (_set("pages.0.dimensions", -1), r"pages\[0\]: dimensions must be an integer >= 0"),
        (_set("pages.0.dimensions", True), r"dimensions must be an integer >= 0"),
        (_set("pages.0.dimensions", 3), r"pages\[0\]: missing axis_dim3"),
        (_set("pages.0.dimensions", 10**12), r"pages\[0\]: missing axis_dim3"),
        (_set("pages.0.dimensions", 1), r"pages\[0\]: unknown keys axis_dim2"),
        (_delete("pages.0.axis_dim1"), r"pages\[0\]: missing axis_dim1"),
        (_set("pages.0.axis_dim2.values", None), r"axis_dim2: must be an object with a values"),
        (_delete("pages.0.data"), r"pages\[0\]: missing data"),
        (_set("pages.0.data.values.5", "6"), r"data values must be numbers or null"),
        (_set("pages.0.data.values.5", True), r"data values must be numbers or null"),
        (_set("pages.0.data.unit", None), r"data name and unit must be strings"),
        (_set("pages.1.data.values", [1, 2]), r"pages\[1\] \(page_number 1\): 2 values, but"),
        (_set("pages.0.error", {"values": [1]}), r"error must hold one number or null per data"),
    ],
)
def test_refuses_broken_estimators(breakage: Breakage, message: str) -> None:
    estimators = copy.deepcopy(VALID)
    breakage(estimators)
    with pytest.raises(EstimatorError, match=message):
        validate_estimators(estimators)


@pytest.mark.parametrize("obj", [None, {}, [], "[]", [1]])
def test_refuses_what_is_not_a_list_of_estimators(obj: object) -> None:
    with pytest.raises(EstimatorError):
        validate_estimators(obj)


def test_refuses_duplicate_names() -> None:
    estimators = copy.deepcopy(VALID) * 2
    with pytest.raises(EstimatorError, match="'yz': name is used by another estimator"):
        validate_estimators(estimators)


def test_phase_space_pages_are_exempt_from_the_layout() -> None:
    estimators = copy.deepcopy(VALID)
    page = estimators[0]["pages"][0]
    page["metadata"]["page_normalized"] = "4"
    page["data"]["values"] = [{"x": 1.0}, {"x": 2.0}]
    assert validate_estimators(estimators)[0]["pages"][0]["data"]["values"] == [
        {"x": 1.0},
        {"x": 2.0},
    ]


def test_bounds_the_number_of_estimators() -> None:
    one = VALID[0]
    estimators = [{**one, "name": f"e{i}"} for i in range(MAX_ESTIMATORS + 1)]
    with pytest.raises(EstimatorError, match="too many estimators"):
        validate_estimators(estimators)
    with pytest.raises(EstimatorError, match="too many pages"):
        validate_estimators(estimators[: MAX_ESTIMATORS // 2 + 1])


def test_checked_estimators_serialise_as_json() -> None:
    text = json.dumps(validate_estimators(copy.deepcopy(VALID)), allow_nan=False)
    assert json.loads(text)[0]["pages"][1]["data"]["values"] == [7]


@pytest.mark.parametrize(
    ("name", "core"),
    [("z_profile_", "z_profile"), ("z_profile", "z_profile"), ("21", "21"), ("a__", "a_")],
)
def test_core_name_strips_one_trailing_underscore(name: str, core: str) -> None:
    assert core_name(name) == core


@pytest.mark.parametrize(
    ("names", "wanted", "found"),
    [
        (["z_profile_", "z_profile"], "z_profile", "z_profile"),  # exact wins
        (["peak", "z_profile_"], "z_profile", "z_profile_"),
        (["peak", "z_profile"], "z_profile_", "z_profile"),
        (["peak", "z_profile__"], "z_profile", None),  # one underscore only
        (["Peak"], "peak", None),  # case matters
    ],
)
def test_find_estimator(names: list[str], wanted: str, found: str | None) -> None:
    estimators = [{"name": name} for name in names]
    match = find_estimator(estimators, wanted)
    assert (match["name"] if match else None) == found
