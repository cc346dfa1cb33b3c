"""The editor's beam as engines take it: spot lists (sobp.dat), flat shapes and SAD."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.editor.beams import FWHM_PER_SIGMA, parse_spot_list
from cyclotron.simulators.editor.model import parse_project
from cyclotron.simulators.editor.records import FLAT_CIRCLE, FLAT_SQUARE, GAUSSIAN, Spot

EX1 = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide" / "ex1.json"


@pytest.fixture
def ex1() -> dict[str, Any]:
    path = EX1
    if not path.is_file():
        pytest.skip("YAPTIDE example ex1 is absent (shared fixtures not checked out)")
    project: dict[str, Any] = json.loads(path.read_text())["input"]["inputJson"]
    return copy.deepcopy(project)


def test_spot_lists_of_five_six_and_seven_columns() -> None:
    text = """* a comment, then a blank line

    0.150 1.0 -2.0 0.5 3
    # energy GeV/u, x, y, FWHM x, FWHM y, weight
    0.100 0 0 0.5 1.0 1
    0.070 0.0007 -1 1 0.2 0.4 0.5
    """
    five, six, seven = parse_spot_list(text)
    sigma = 0.5 / FWHM_PER_SIGMA
    assert five == pytest.approx(Spot(150.0, 0.0, 1.0, -2.0, sigma, sigma, 3.0))
    assert (six.energy, six.sigma_x, six.sigma_y) == pytest.approx((100.0, sigma, 2 * sigma))
    assert seven == pytest.approx(Spot(70.0, 0.7, -1.0, 1.0, 0.4 * sigma, 0.8 * sigma, 0.5))
    assert parse_spot_list("0.1 0 0 0 1", nucleons=12)[0].energy == pytest.approx(1200.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no spots"),
        ("0.1 0 0 1", "4 columns"),
        ("0.1 0 0 1 x", "not numbers"),
        ("-0.1 0 0 1 1", "energy must be positive"),
        ("0.1 0 0 1 0", "weight 0"),
        ("0.1 0 nan 1 1", "not finite"),
    ],
)
def test_bad_spot_lists_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        parse_spot_list(text)


def test_a_file_source_becomes_the_beams_spots(ex1: dict[str, Any]) -> None:
    ex1["beam"].update(
        sourceType="file",
        sourceFile={"name": "sobp.dat", "value": "0.1 0 0 0.5 1\n0.12 1 0 0.5 2\n"},
    )
    beam = parse_project(ex1).beam
    assert [spot.energy for spot in beam.spots] == pytest.approx([100.0, 120.0])
    assert beam.energies == pytest.approx((100.0, 120.0))
    ex1["beam"]["sourceFile"]["value"] = ""
    with pytest.raises(ConversionError, match="no spots"):
        parse_project(ex1)


@pytest.mark.parametrize(
    ("sigma", "sad", "expected"),
    [
        ({"type": "Gaussian", "x": 0.3, "y": 0.4}, {"type": "none"}, (GAUSSIAN, 0.3, 0.4, 0, 0)),
        (
            {"type": "Flat square", "x": 1, "y": 2},
            {"type": "single", "x": 100, "y": 7},
            (FLAT_SQUARE, 1, 2, 100, 100),
        ),
        (
            {"type": "Flat circular", "x": 0, "y": 3},
            {"type": "double", "x": 200, "y": 256},
            (FLAT_CIRCLE, 3, 3, 200, 256),
        ),
    ],
)
def test_shapes_and_sad_reach_the_beam(
    ex1: dict[str, Any],
    sigma: dict[str, Any],
    sad: dict[str, Any],
    expected: tuple[Any, ...],
) -> None:
    ex1["beam"].update(sigma=sigma, sad=sad)
    beam = parse_project(ex1).beam
    assert (beam.shape, beam.sigma_x, beam.sigma_y, beam.sad_x, beam.sad_y) == expected
