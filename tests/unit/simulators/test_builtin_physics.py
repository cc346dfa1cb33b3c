"""The ``builtin`` engine's physics against reference data (spec/engines.md, NIST PSTAR)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cyclotron.simulators.builtin import media, physics

WATER = media.material(276)
# NIST PSTAR, liquid water (I = 75 eV): electronic stopping power (MeV cm²/g) and CSDA range.
PSTAR_STOPPING = {10.0: 45.67, 20.0: 26.07, 50.0: 12.45, 100.0: 7.289, 150.0: 5.445, 200.0: 4.492}
PSTAR_RANGE = {50.0: 2.227, 70.0: 4.080, 100.0: 7.718, 150.0: 15.77, 200.0: 25.96, 230.0: 32.95}
# The engine's water uses I = 78 eV (ICRU 90): ranges about 0.5 % longer than PSTAR's.
I78_RANGE_FACTOR = 1.005


def test_water_uses_the_icru90_mean_excitation_energy() -> None:
    assert WATER.mean_excitation == 78.0
    assert WATER.z_over_a == pytest.approx(0.5551, rel=1e-3)
    assert WATER.radiation_length == pytest.approx(36.08, rel=2e-3)  # PDG
    assert WATER.scattering_length == pytest.approx(46.88, rel=2e-3)  # Gottschalk 2010


@pytest.mark.parametrize("energy", sorted(PSTAR_STOPPING))
def test_water_stopping_power_matches_pstar_within_two_percent(energy: float) -> None:
    computed = physics.electronic_stopping(WATER, 1.0, np.array([energy]))[0]
    assert computed == pytest.approx(PSTAR_STOPPING[energy], rel=0.02)


@pytest.mark.parametrize("energy", sorted(PSTAR_RANGE))
def test_water_csda_range_matches_pstar_scaled_to_78_ev(energy: float) -> None:
    computed = physics.csda_range(WATER, 1.0, np.array([energy]))[0]
    assert computed == pytest.approx(PSTAR_RANGE[energy] * I78_RANGE_FACTOR, rel=0.01)


def test_with_pstar_mean_excitation_the_range_is_pstar_within_half_a_percent() -> None:
    water75 = dataclasses.replace(WATER, mean_excitation=75.0)
    energies = np.array(sorted(PSTAR_RANGE))
    computed = physics.csda_range(water75, 1.0, energies)
    np.testing.assert_allclose(computed, [PSTAR_RANGE[e] for e in energies], rtol=0.005)


@pytest.mark.parametrize(
    ("icru", "density", "energy", "pstar"),
    [(13, 2.699, 50.0, 9.594), (13, 2.699, 150.0, 4.262), (82, 11.35, 50.0, 5.806),
     (82, 11.35, 150.0, 2.714)],
)  # fmt: skip
def test_metal_stopping_powers_match_pstar_within_three_percent(
    icru: int, density: float, energy: float, pstar: float
) -> None:
    computed = physics.electronic_stopping(media.material(icru), density, np.array([energy]))[0]
    assert computed == pytest.approx(pstar, rel=0.03)


def test_bohr_straggling_at_150_mev_over_one_centimetre() -> None:
    # σ² = 0.1569 ρ (Z/A) ds (1 − β²/2)/(1 − β²), β² = 0.2567 at 150 MeV.
    variance = physics.bohr_variance(WATER.z_over_a, 1.0, 150.0, 1.0)
    assert np.sqrt(variance) == pytest.approx(0.3196, rel=2e-3)


@pytest.mark.parametrize("energy", [70.0, 150.0, 230.0])
def test_range_straggling_from_bohr_is_near_bortfeld(energy: float) -> None:
    grid = np.linspace(0.05, energy, 20000)
    stopping = physics.electronic_stopping(WATER, 1.0, grid)
    rate = np.array([physics.bohr_variance(WATER.z_over_a, 1.0, e, 1.0) for e in grid])
    sigma_range = np.sqrt(np.trapezoid(rate / stopping**3, grid))
    csda = physics.csda_range(WATER, 1.0, np.array([energy]))[0]
    assert sigma_range == pytest.approx(0.012 * csda**0.935, rel=0.10)


@pytest.mark.parametrize(("energy", "highland_mrad"), [(70.0, 15.75), (150.0, 7.42), (230.0, 4.93)])
def test_scattering_power_over_one_centimetre_gives_highland(
    energy: float, highland_mrad: float
) -> None:
    substeps = 1000
    ds = 1.0 / substeps
    variance, e = 0.0, energy
    for _ in range(substeps):
        loss = physics.electronic_stopping(WATER, 1.0, np.array([e]))[0] * ds
        power = physics.scattering_power(e - 0.5 * loss, energy, 1.0 / WATER.scattering_length)
        variance += power * ds
        e -= loss
    assert np.sqrt(variance) * 1e3 == pytest.approx(highland_mrad, rel=0.05)


def test_nuclear_removal_in_water_is_about_one_percent_per_centimetre() -> None:
    sigma = physics.nuclear_cross_section(WATER, np.array([70.0, 100.0, 150.0, 200.0]))
    assert np.all((sigma > 0.009) & (sigma < 0.012))
    # p + ¹⁶O above 150 MeV: 295 mb (ICRU 63), hydrogen contributes nothing.
    oxygen_part = 0.888106 * media.AVOGADRO / 15.999 * 295e-27
    assert sigma[2] == pytest.approx(oxygen_part, rel=1e-3)


def test_media_lookup_knows_the_editor_materials() -> None:
    for icru in (276, 104, 223, 99, 119, 103, 201, 190, 221, 906, 13, 22, 29, 82, 1, 98):
        assert media.supported(icru), icru
        assert media.material(icru).elements
    assert media.material(1000).kind == "vacuum"
    assert media.material(0).kind == "black_hole"


@pytest.mark.parametrize("icru", [99999, -1, 500])
def test_media_lookup_refuses_unknown_ids_by_name(icru: int) -> None:
    assert not media.supported(icru)
    with pytest.raises(media.UnknownMaterial, match=f"ICRU material {icru} "):
        media.material(icru)
