"""Proton physics of the ``builtin`` engine: stopping, range, straggling, scattering, nuclear.

- Electronic stopping: Bethe with the maximum energy transfer, Sternheimer–Peierls density
  effect and an empirical low-energy (shell) factor fitted to PSTAR water below ~20 MeV.
- CSDA range: ∫ dE / S tabulated per medium on a log-energy grid, with its inverse.
- Energy straggling: Bohr, σ² = 0.1569 ρ (Z/A) ds (1 − β²/2)/(1 − β²) MeV².
- Multiple Coulomb scattering: Gottschalk's (2010) differential Highland scattering power
  T_dH = f_dH(pv, p₁v₁) (15 MeV / pv)² ρ / X_S, p₁v₁ being the particle's pv at birth.
- Nuclear removal: total nonelastic cross-sections of ICRU 63 for C and O (N between them),
  others as O scaled by (A/16)^(2/3), hydrogen none. What a nonelastic event emits is in
  nuclear.py (secondary protons from ICRU 63's p + ¹⁶O data) and is applied by the kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from cyclotron.simulators.builtin.media import (
    ATOMIC_MASS,
    AVOGADRO,
    TABLE_MAX_ENERGY,
    TABLE_MIN_ENERGY,
    Material,
)
from cyclotron.simulators.editor.records import FloatArray

PROTON_MASS = 938.272088  # MeV
ELECTRON_MASS = 0.51099895  # MeV
BETHE_K = 0.307075  # MeV cm²/mol
BARN = 1e-24  # cm²

# ICRU 63 σ_nonel (mb) of p + ¹²C and p + ¹⁶O.
_NUCLEAR_ENERGY = np.array(
    [0, 5, 7, 8, 10, 12, 15, 20, 23, 30, 40, 50, 60, 70, 80, 100, 120, 150, 200, 250, 1e4], float
)
_SIGMA_C = np.array(
    [0, 76, 320, 358, 320, 345, 382, 441, 434, 401, 363, 334, 306, 281, 256, 227, 222, 222,
     210, 210, 210], float,
)  # fmt: skip
_SIGMA_O = np.array(
    [0, 0, 208, 308, 425, 479, 518, 535, 537, 501, 449, 401, 362, 333, 313, 297, 295, 295,
     295, 295, 295], float,
)  # fmt: skip

# The log-energy grid of the tables, TABLE_MIN_ENERGY to TABLE_MAX_ENERGY MeV (media.py).
TABLE_POINTS = 1200


def kinematics(energy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """β² and γ of a proton of kinetic energy ``energy`` (MeV)."""
    gamma = 1.0 + energy / PROTON_MASS
    return 1.0 - 1.0 / gamma**2, gamma


def density_effect(mat: Material, density: float, beta_gamma: FloatArray) -> FloatArray:
    """Sternheimer–Peierls density correction δ (zero for protons below ~500 MeV in matter)."""
    plasma = 28.816e-6 * math.sqrt(density * mat.z_over_a)  # MeV
    c_bar = 2.0 * math.log(mat.mean_excitation * 1e-6 / plasma) + 1.0
    if density < 0.01:  # gases
        x1 = 4.0 if c_bar < 12.25 else 5.0
        x0 = max(1.6, 0.326 * c_bar - 2.5)
    elif mat.mean_excitation < 100.0:
        x1, x0 = 2.0, (0.2 if c_bar < 3.681 else 0.326 * c_bar - 1.0)
    else:
        x1, x0 = 3.0, (0.2 if c_bar < 5.215 else 0.326 * c_bar - 1.5)
    a = (c_bar - 4.606 * x0) / (x1 - x0) ** 3
    x = np.log10(beta_gamma)
    middle = 4.606 * x - c_bar + a * np.clip(x1 - x, 0.0, None) ** 3
    return np.where(x < x0, 0.0, np.where(x < x1, middle, 4.606 * x - c_bar))


def electronic_stopping(mat: Material, density: float, energy: FloatArray) -> FloatArray:
    """Mass electronic stopping power (MeV cm²/g) of protons of ``energy`` MeV in ``mat``."""
    energy = np.asarray(energy, dtype=float)
    if not mat.elements:
        return np.zeros_like(energy)
    beta2, gamma = kinematics(energy)
    bg2 = beta2 * gamma**2
    ratio = ELECTRON_MASS / PROTON_MASS
    t_max = 2.0 * ELECTRON_MASS * bg2 / (1.0 + 2.0 * gamma * ratio + ratio**2)
    i_mev = mat.mean_excitation * 1e-6
    log_term = 0.5 * np.log(2.0 * ELECTRON_MASS * bg2 * t_max / i_mev**2)
    delta = density_effect(mat, density, np.sqrt(bg2))
    bethe = BETHE_K * mat.z_over_a / beta2 * (log_term - beta2 - 0.5 * delta)
    shell = 1.0 - 0.04 / (1.0 + (energy / 3.0) ** 1.5)
    # Bethe fails below ~0.5 MeV: continue it there as S ∝ E^-0.5 (a few µm of range).
    low = 0.5
    if np.any(energy < low):
        at_low = electronic_stopping(mat, density, np.array([low]))[0]
        below = at_low * np.sqrt(low / np.maximum(energy, 1e-9))
        return np.where(energy < low, below, bethe * shell)
    return np.asarray(bethe * shell)


def nuclear_cross_section(mat: Material, energy: FloatArray) -> FloatArray:
    """Macroscopic nonelastic cross-section per mass (cm²/g) at ``energy`` MeV."""
    energy = np.asarray(energy, dtype=float)
    total = np.zeros_like(energy)
    sigma_c = np.interp(energy, _NUCLEAR_ENERGY, _SIGMA_C)
    sigma_o = np.interp(energy, _NUCLEAR_ENERGY, _SIGMA_O)
    for z, fraction in mat.elements:
        if z == 1:
            continue
        a = ATOMIC_MASS[z - 1]
        if z == 6:
            sigma = sigma_c
        elif z == 7:
            sigma = 0.5 * (sigma_c + sigma_o)
        else:
            sigma = sigma_o * (a / 16.0) ** (2.0 / 3.0)
        total += fraction * AVOGADRO / a * sigma * 1e-3 * BARN
    return total


@njit(cache=True)
def bohr_variance(z_over_a: float, density: float, energy: float, step: float) -> float:
    """Bohr energy-straggling variance (MeV²) over ``step`` cm at ``energy`` MeV."""
    gamma = 1.0 + energy / PROTON_MASS
    beta2 = 1.0 - 1.0 / (gamma * gamma)
    return 0.1569 * density * z_over_a * step * (1.0 - 0.5 * beta2) / (1.0 - beta2)


@njit(cache=True)
def pv(energy: float) -> float:
    """Momentum times velocity (MeV) of a proton of kinetic energy ``energy`` MeV."""
    return energy * (energy + 2.0 * PROTON_MASS) / (energy + PROTON_MASS)


@njit(cache=True)
def scattering_power(energy: float, initial_energy: float, density_over_xs: float) -> float:
    """Gottschalk's differential Highland scattering power T_dH (rad²/cm).

    ``initial_energy`` is the energy the particle had where it entered the scattering
    history (the beam energy for primaries); ``density_over_xs`` is ρ / X_S (1/cm).
    """
    pv_now = pv(energy)
    ratio2 = min(pv_now / pv(initial_energy), 0.999) ** 2
    log_l = math.log10(1.0 - ratio2)
    log_pv = math.log10(pv_now)
    f_dh = 0.5244 + 0.1975 * log_l + 0.2320 * log_pv - 0.0098 * log_pv * log_l
    return max(f_dh, 0.0) * (15.0 / pv_now) ** 2 * density_over_xs


def csda_range(mat: Material, density: float, energy: FloatArray) -> FloatArray:
    """CSDA range (g/cm²) of protons of ``energy`` MeV, from the tabulated integral."""
    grid, ranges = _range_table(mat, density)
    return np.interp(np.log(energy), np.log(grid), ranges)


def energy_grid() -> FloatArray:
    """The log-spaced kinetic energies (MeV) of every table."""
    return np.geomspace(TABLE_MIN_ENERGY, TABLE_MAX_ENERGY, TABLE_POINTS)


def _range_table(mat: Material, density: float) -> tuple[FloatArray, FloatArray]:
    grid = energy_grid()
    stopping = electronic_stopping(mat, density, grid)
    integrand = grid / stopping  # dR/dlnE
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(np.log(grid))
    # Below the grid, S ∝ E^-0.5 gives R = (2/3)·E/S.
    start = 2.0 / 3.0 * integrand[0]
    return grid, np.concatenate(([start], start + np.cumsum(steps)))


@dataclass(frozen=True)
class MediumTables:
    """What the kernel needs of one medium, per the shared energy grid (mass units)."""

    stopping: FloatArray  # MeV cm²/g
    csda: FloatArray  # g/cm²
    nuclear: FloatArray  # cm²/g
    stopping_integral: FloatArray  # ∫₀ᴱ S dE', MeV² cm²/g


def medium_tables(mat: Material, density: float) -> MediumTables:
    """Stopping power, CSDA range, nonelastic cross-section and the integral of the stopping
    power over energy of ``mat`` on the grid."""
    grid, ranges = _range_table(mat, density)
    stopping = electronic_stopping(mat, density, grid)
    return MediumTables(
        stopping, ranges, nuclear_cross_section(mat, grid), _stopping_integral(grid, stopping)
    )


def _stopping_integral(grid: FloatArray, stopping: FloatArray) -> FloatArray:
    """∫₀ᴱ S dE' on the grid: a stopping proton's deposit weighted by its LET.

    ``(Q(E₀) − Q(E₁)) / (E₀ − E₁)`` is the dose-averaged stopping power of a step from E₀
    down to E₁. Below the grid S ∝ E^-0.5, which gives Q = 2·E·S there.
    """
    integrand = grid * stopping  # dQ/dlnE
    steps = 0.5 * (integrand[1:] + integrand[:-1]) * np.diff(np.log(grid))
    start = 2.0 * integrand[0]
    return np.concatenate(([start], start + np.cumsum(steps)))
