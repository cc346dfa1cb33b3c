"""Estimator pages as NumPy arrays (spec/results.md §4: flat values, first axis fastest)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cyclotron.client
from cyclotron.client.results import Page, Results


def test_a_2d_page_is_shaped_first_axis_fastest() -> None:
    # The spec's example: Y (3 bins) and Z (2 bins), values v(y0,z0), v(y1,z0), v(y2,z0), ...
    page = Page.from_json(
        {
            "dimensions": 2,
            "data": {"name": "DOSE", "unit": "Gy", "values": [0, 1, 2, 10, 11, None]},
            "error": {"name": "stderr", "unit": "Gy", "values": [0.1] * 6},
            "axis_dim1": {"name": "Position (Y)", "unit": "cm", "values": [0.5, 1.5, 2.5]},
            "axis_dim2": {"name": "Position (Z)", "unit": "cm", "values": [1, 3]},
            "metadata": {"page_number": "2", "name": "DOSE"},
        }
    )
    assert page.number == 2 and page.values.shape == (3, 2)
    assert page.values[2, 0] == 2 and page.values[1, 1] == 11
    assert math.isnan(page.values[2, 1])  # null: not finite
    assert page.error is not None and page.error.shape == (3, 2)
    assert [axis.label for axis in page.axes] == ["Position (Y) [cm]", "Position (Z) [cm]"]


def test_a_0d_page_and_the_older_nested_form() -> None:
    for values in ([4.5], [[4.5]]):
        page = Page.from_json({"dimensions": 0, "data": {"name": "D", "values": values}})
        assert page.values.shape == () and float(page.values) == 4.5


def test_results_find_estimators_and_pages_by_name_and_number() -> None:
    body = {
        "kind": "estimators",
        "partial": True,
        "estimators": [
            {
                "name": "slab",
                "metadata": {"number_of_primaries": "4000"},
                "pages": [{"dimensions": 0, "data": {"values": [1]}, "metadata": {}}],
            }
        ],
    }
    results = Results.from_json(body)
    assert results.partial and len(results) == 1 and results["slab"].primaries == 4000
    assert np.array_equal(results["slab"].page(0).values, np.array(1.0))
    with pytest.raises(KeyError):
        results["nope"]
    with pytest.raises(KeyError):
        results["slab"].page(7)


def test_the_public_names_are_importable() -> None:
    for name in cyclotron.client.__all__:
        assert getattr(cyclotron.client, name) is not None
