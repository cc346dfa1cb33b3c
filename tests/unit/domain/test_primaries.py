"""Primaries: read from SHIELD-HIT12A and FLUKA inputs, and split so the sum is exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from cyclotron.domain.primaries import (
    nstat_of,
    primaries_in,
    split_primaries,
    start_of,
    with_nstat,
)

BEAM = (
    "RNDSEED      \t89736501     ! Random seed\n"
    "NSTAT       666    0       ! NSTAT, Step of saving\n"
)


@pytest.mark.parametrize(
    ("total", "ntasks", "expected"),
    [
        (10000, 3, [3334, 3333, 3333]),
        (10, 4, [3, 3, 2, 2]),
        (7, 7, [1] * 7),
        (1000000, 15, [66667] * 10 + [66666] * 5),
    ],
)
def test_the_first_remainder_tasks_get_one_more(
    total: int, ntasks: int, expected: list[int]
) -> None:
    shares = split_primaries(total, ntasks)
    assert shares == expected
    assert sum(shares) == total


def test_nstat_is_read_and_replaced_without_touching_the_rest() -> None:
    assert nstat_of(BEAM) == 666
    rewritten = with_nstat(BEAM, 3334)
    assert nstat_of(rewritten) == 3334
    assert rewritten.replace("3334", "666") == BEAM


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        ("START        66666.0\n", 66666),  # fixed format, WHAT(1) in columns 11-20
        ("START, 1e3, 0\n", 1000),  # free format
        ("START     1.0D+04\n", 10000),  # Fortran exponent
        ("START\n", None),
        ("START        2.5\n", None),  # not a whole number of primaries
    ],
)
def test_the_first_start_card_gives_fluka_primaries(card: str, expected: int | None) -> None:
    assert start_of("TITLE\nproton beam\n" + card + "START        99.0\n") == expected


def test_primaries_in_reads_beam_dat_then_fluka_inputs(tmp_path: Path) -> None:
    assert primaries_in(tmp_path) is None
    (tmp_path / "fl_sim.inp").write_text("START        66666.0\n")
    assert primaries_in(tmp_path) == 66666
    (tmp_path / "beam.dat").write_text(BEAM)
    assert primaries_in(tmp_path) == 666
    (tmp_path / "beam.dat").write_text("NSTAT   0   0\n")
    assert primaries_in(tmp_path) is None
