"""Nuclear events of the ``builtin`` engine: what a nonelastic event emits (secondary protons
with an energy–angle distribution from ICRU Report 63's evaluated p + ¹⁶O data), and the
elastic scattering of protons on nuclei (ICRU 63) and on hydrogen.

ICRU 63 (2000) gives, per incident proton energy E, the proton multiplicity and the double-
differential emission cross-section d²σ/dε dΩ at 13 angles; MCsquare samples the same
evaluated tables (its ``Materials/*/ICRU_Nuclear_inelastic.dat``), as VMCpro did before it
(Fippel & Soukup 2004, Med. Phys. 31:2263, for p + ¹⁶O). The tables below condense them:

- ``MULTIPLICITY``: mean number of secondary protons per event at ``ENERGIES`` (MeV); an
  event emits its integer part plus one more with the probability of its fraction.
- ``ENERGY_QUANTILES``: 17 quantiles (0, 1/16, …, 1) of ε/E, the secondary proton's share of
  the incident energy, from the angle-integrated spectrum dσ/dε (a low-energy evaporation
  peak and a flat cascade part up to nearly E).
- ``ANGLE_QUANTILES``: 17 quantiles of the emission angle (degrees, to the incident
  direction) for the ε/E bins between ``ANGLE_SHARES``, from d²σ/dε dΩ · sin θ summed over
  incident energies 50–250 MeV (the angle depends on ε/E far more than on E): a cascade
  proton near ε = E goes forward (median 26°), an evaporation proton almost isotropically.
- ``LOCAL_FRACTION``: the share of E that ICRU 63's deuterons, alphas and recoiling nuclei
  carry; they, and protons under ``MIN_SECONDARY_ENERGY``, are deposited where the event is.

What neither the protons nor the local deposit take (about a third of E: neutrons, gammas
and binding energy) leaves the event unscored. Every table is interpolated linearly in
log E between ``ENERGIES`` and held constant beyond them. These are the p + ¹⁶O values, used
for every medium (nonelastic events in water and tissue are mostly on oxygen).

Elastic scattering, which keeps the proton and turns it, makes most of the halo within a
centimetre or two of a pencil beam:

- on nuclei: ICRU 63's p + ¹⁶O elastic cross-section (``ELASTIC_CROSS_SECTION``, mb, from
  5° on, where its tables start) and centre-of-mass angle (``ELASTIC_ANGLES``, quantiles at
  ``ELASTIC_LEVELS``), other nuclei scaled by (A/16)^(2/3) as for the nonelastic events; the
  recoil's energy is deposited on the spot;
- on hydrogen: the cross-section MCsquare uses after Fippel & Soukup (2004),
  0.315·E^-1.126 + 3.78e-6·E cm²/g of water above 10 MeV (``physics.proton_elastic``),
  isotropic in the centre of mass; the struck proton is transported.

Both are turned into the laboratory by relativistic two-body kinematics (``elastic_*``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from cyclotron.simulators.builtin.media import ATOMIC_MASS, AVOGADRO, Material
from cyclotron.simulators.builtin.physics import BARN, PROTON_MASS
from cyclotron.simulators.editor.records import FloatArray

ENERGIES = np.array([10.0, 20.0, 30.0, 50.0, 70.0, 100.0, 150.0, 200.0, 250.0])
MULTIPLICITY = np.array([0.885, 0.991, 1.009, 1.212, 1.427, 1.692, 1.987, 2.165, 2.335])
LOCAL_FRACTION = np.array([0.122, 0.205, 0.228, 0.209, 0.200, 0.196, 0.183, 0.176, 0.161])
ENERGY_QUANTILES = np.array(
    [
        [0.000, 0.173, 0.209, 0.232, 0.250, 0.263, 0.275, 0.286, 0.296, 0.307, 0.318, 0.329,
         0.342, 0.358, 0.378, 0.414, 0.525],
        [0.000, 0.084, 0.131, 0.169, 0.202, 0.234, 0.266, 0.299, 0.336, 0.378, 0.427, 0.487,
         0.543, 0.591, 0.631, 0.668, 0.750],
        [0.000, 0.062, 0.096, 0.126, 0.155, 0.186, 0.219, 0.256, 0.297, 0.342, 0.393, 0.449,
         0.515, 0.595, 0.683, 0.747, 0.850],
        [0.000, 0.036, 0.059, 0.080, 0.102, 0.127, 0.157, 0.193, 0.237, 0.293, 0.357, 0.429,
         0.509, 0.599, 0.712, 0.821, 0.900],
        [0.000, 0.029, 0.044, 0.060, 0.076, 0.095, 0.117, 0.145, 0.182, 0.230, 0.292, 0.370,
         0.462, 0.565, 0.678, 0.828, 0.925],
        [0.000, 0.023, 0.035, 0.047, 0.060, 0.073, 0.090, 0.111, 0.140, 0.176, 0.228, 0.304,
         0.405, 0.524, 0.657, 0.803, 0.950],
        [0.000, 0.016, 0.029, 0.038, 0.047, 0.059, 0.071, 0.087, 0.107, 0.135, 0.180, 0.259,
         0.376, 0.513, 0.662, 0.812, 0.975],
        [0.000, 0.014, 0.027, 0.035, 0.043, 0.051, 0.063, 0.075, 0.092, 0.115, 0.154, 0.233,
         0.357, 0.505, 0.661, 0.812, 0.975],
        [0.000, 0.012, 0.024, 0.032, 0.039, 0.047, 0.056, 0.068, 0.084, 0.105, 0.144, 0.230,
         0.362, 0.516, 0.671, 0.814, 0.975],
    ]
)  # fmt: skip
ANGLE_SHARES = np.array([0.0, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0])
ANGLE_QUANTILES = np.array(
    [
        [0.0, 21.8, 31.5, 39.6, 46.9, 53.7, 60.5, 67.2, 74.0, 81.1, 88.6, 96.7, 105.4, 115.4,
         127.2, 142.7, 180.0],
        [0.0, 19.3, 27.9, 35.0, 41.4, 47.6, 53.6, 59.8, 66.1, 72.7, 79.7, 87.5, 96.3, 106.5,
         119.2, 136.4, 180.0],
        [0.0, 16.9, 24.4, 30.5, 36.1, 41.4, 46.6, 51.8, 57.2, 63.0, 69.2, 76.1, 83.9, 93.4,
         105.7, 124.0, 180.0],
        [0.0, 14.3, 20.6, 25.8, 30.5, 34.9, 39.2, 43.6, 48.1, 52.8, 58.0, 63.7, 70.3, 78.3,
         88.6, 105.2, 180.0],
        [0.0, 12.0, 17.3, 21.6, 25.5, 29.2, 32.8, 36.5, 40.2, 44.2, 48.4, 53.1, 58.6, 65.2,
         74.0, 87.2, 180.0],
        [0.0, 10.0, 14.4, 18.0, 21.3, 24.3, 27.4, 30.4, 33.5, 36.8, 40.3, 44.1, 48.6, 54.1,
         61.7, 74.9, 180.0],
        [0.0, 7.8, 11.3, 14.1, 16.6, 19.0, 21.4, 23.8, 26.2, 28.8, 31.7, 34.8, 38.4, 42.9,
         48.9, 58.5, 180.0],
    ]
)  # fmt: skip
ELASTIC_LEVELS = np.array(
    [0.0, 0.0625, 0.125, 0.1875, 0.25, 0.3125, 0.375, 0.4375, 0.5, 0.5625, 0.625, 0.6875,
     0.75, 0.8125, 0.875, 0.9375, 0.97, 0.99, 0.999]
)  # fmt: skip
ELASTIC_CROSS_SECTION = np.array(
    [11703.3, 3272.8, 1689.6, 752.6, 452.6, 241.3, 112.1, 75.5, 82.2]
)  # mb, p + 16O at ENERGIES
ELASTIC_ANGLES = np.array(
    [
        [5.00, 5.41, 5.83, 6.24, 6.65, 7.07, 7.48, 7.90, 8.31, 8.72, 9.14, 9.55, 9.96, 12.69,
         16.72, 29.49, 45.66, 103.08, 149.52],
        [5.00, 5.52, 6.05, 6.57, 7.09, 7.61, 8.14, 8.66, 9.18, 9.70, 11.34, 14.41, 18.99, 24.55,
         31.35, 41.79, 58.47, 92.63, 149.22],
        [5.00, 5.67, 6.34, 7.01, 7.69, 8.36, 9.03, 9.70, 11.51, 14.25, 17.28, 20.46, 23.86,
         27.72, 32.52, 39.94, 52.41, 79.16, 126.39],
        [5.00, 5.90, 6.79, 7.69, 8.58, 9.48, 10.82, 12.78, 14.74, 16.68, 18.63, 20.68, 22.99,
         25.46, 28.85, 34.06, 40.24, 61.35, 99.60],
        [5.00, 6.07, 7.14, 8.21, 9.28, 10.47, 11.90, 13.32, 14.74, 16.25, 17.78, 19.31, 21.21,
         23.43, 26.20, 30.73, 36.69, 51.22, 78.70],
        [5.00, 6.00, 6.99, 7.99, 8.98, 9.98, 11.08, 12.18, 13.29, 14.39, 15.64, 17.08, 18.52,
         19.96, 22.67, 26.08, 29.82, 40.10, 65.08],
        [5.00, 5.77, 6.55, 7.32, 8.09, 8.87, 9.64, 10.50, 11.43, 12.36, 13.30, 14.23, 15.31,
         17.08, 18.85, 21.90, 24.72, 32.35, 56.67],
        [5.00, 5.59, 6.18, 6.77, 7.35, 7.94, 8.53, 9.12, 9.71, 10.48, 11.43, 12.39, 13.34, 14.30,
         15.77, 18.68, 20.96, 27.11, 50.98],
        [5.00, 5.47, 5.93, 6.40, 6.87, 7.34, 7.80, 8.27, 8.74, 9.20, 9.67, 10.34, 11.48, 12.62,
         13.77, 14.91, 17.94, 20.60, 42.67],
    ]
)  # fmt: skip
#: Secondary protons below this (MeV, a range of 2 µm in water) are deposited on the spot.
MIN_SECONDARY_ENERGY = 0.5
_LOG_ENERGIES = np.log(ENERGIES)
#: The nucleus elastic scattering's kinematics take (¹⁶O over the proton's mass).
TARGET_MASS_RATIO = 15.87
#: Water's hydrogen mass fraction, which MCsquare's p + p cross-section is written for.
WATER_HYDROGEN = 0.1119
PROTON_ELASTIC_THRESHOLD = 10.0  # MeV


def elastic_cross_sections(mat: Material, energy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Macroscopic elastic cross-sections per mass (cm²/g) of ``mat`` at ``energy`` MeV: on
    its nuclei (ICRU 63 p + ¹⁶O, scaled by (A/16)^(2/3)) and on its hydrogen."""
    energy = np.asarray(energy, dtype=float)
    log_sigma = np.interp(np.log(energy), _LOG_ENERGIES, np.log(ELASTIC_CROSS_SECTION))
    sigma_o = np.where(energy >= 7.0, np.exp(log_sigma), 0.0) * 1e-3 * BARN
    nuclei = np.zeros_like(energy)
    hydrogen = np.zeros_like(energy)
    for z, fraction in mat.elements:
        a = ATOMIC_MASS[z - 1]
        if z == 1:
            pp = 0.315 * energy**-1.126 + 3.78e-6 * energy
            hydrogen += np.where(energy > PROTON_ELASTIC_THRESHOLD, pp, 0.0) * fraction
        else:
            nuclei += fraction * AVOGADRO / a * sigma_o * (a / 16.0) ** (2.0 / 3.0)
    return nuclei, hydrogen / WATER_HYDROGEN


@njit(cache=True)
def _energy_index(energy: float) -> tuple[int, float]:
    """Row below ``energy`` in ``ENERGIES`` and the log-energy fraction towards the next."""
    log_e = math.log(max(energy, 1e-9))
    last = _LOG_ENERGIES.size - 1
    if log_e <= _LOG_ENERGIES[0]:
        return 0, 0.0
    if log_e >= _LOG_ENERGIES[last]:
        return last - 1, 1.0
    i = 0
    while _LOG_ENERGIES[i + 1] < log_e:
        i += 1
    return i, (log_e - _LOG_ENERGIES[i]) / (_LOG_ENERGIES[i + 1] - _LOG_ENERGIES[i])


@njit(cache=True)
def _quantile(row: np.ndarray, u: float) -> float:
    """The value at probability ``u`` of a row of 17 equally spaced quantiles."""
    t = u * (row.size - 1)
    i = min(int(t), row.size - 2)
    f = t - i
    return float(row[i] * (1.0 - f) + row[i + 1] * f)


@njit(cache=True)
def multiplicity(energy: float) -> float:
    """Mean number of secondary protons of an event at ``energy`` MeV."""
    i, f = _energy_index(energy)
    return float(MULTIPLICITY[i] * (1.0 - f) + MULTIPLICITY[i + 1] * f)


@njit(cache=True)
def local_fraction(energy: float) -> float:
    """Share of ``energy`` that the event's deuterons, alphas and recoils deposit on the
    spot."""
    i, f = _energy_index(energy)
    return float(LOCAL_FRACTION[i] * (1.0 - f) + LOCAL_FRACTION[i + 1] * f)


@njit(cache=True)
def energy_share(energy: float, u: float) -> float:
    """ε/E of a secondary proton of an event at ``energy`` MeV, for a uniform ``u``."""
    i, f = _energy_index(energy)
    low = _quantile(ENERGY_QUANTILES[i], u)
    return low * (1.0 - f) + _quantile(ENERGY_QUANTILES[i + 1], u) * f


@njit(cache=True)
def emission_cosine(share: float, u: float) -> float:
    """cos θ of a secondary proton of energy share ``share``, for a uniform ``u``."""
    b = 0
    while b < ANGLE_SHARES.size - 2 and share >= ANGLE_SHARES[b + 1]:
        b += 1
    return math.cos(math.radians(_quantile(ANGLE_QUANTILES[b], u)))


@njit(cache=True)
def _level_quantile(levels: np.ndarray, row: np.ndarray, u: float) -> float:
    """The value at probability ``u`` of quantiles ``row`` given at ``levels``."""
    if u >= levels[levels.size - 1]:
        return float(row[row.size - 1])
    i = 0
    while levels[i + 1] < u:
        i += 1
    f = (u - levels[i]) / (levels[i + 1] - levels[i])
    return float(row[i] * (1.0 - f) + row[i + 1] * f)


@njit(cache=True)
def elastic_cm_cosine(energy: float, u: float) -> float:
    """cos θ in the centre of mass of a p + ¹⁶O elastic scattering at ``energy`` MeV."""
    i, f = _energy_index(energy)
    low = _level_quantile(ELASTIC_LEVELS, ELASTIC_ANGLES[i], u)
    angle = low * (1.0 - f) + _level_quantile(ELASTIC_LEVELS, ELASTIC_ANGLES[i + 1], u) * f
    return math.cos(math.radians(angle))


@njit(cache=True)
def elastic_on_nucleus(energy: float, cos_cm: float, mass_ratio: float) -> tuple[float, float]:
    """Energy the proton keeps (MeV) and cos θ in the laboratory after scattering at
    ``cos_cm`` in the centre of mass on a nucleus at rest ``mass_ratio`` times its mass.

    The recoil takes p*²(1 − cos θ*)/M (p* the momentum in the centre of mass); the angle
    is tan θ = sin θ* / (γ (cos θ* + β/β*)), β and γ of the centre of mass, β* the
    proton's speed in it.
    """
    target = mass_ratio * PROTON_MASS
    total = energy + PROTON_MASS
    momentum2 = energy * (energy + 2.0 * PROTON_MASS)
    s = PROTON_MASS * PROTON_MASS + target * target + 2.0 * target * total
    p_cm2 = momentum2 * target * target / s
    beta = math.sqrt(momentum2) / (total + target)
    gamma = 1.0 / math.sqrt(1.0 - beta * beta)
    beta_star = math.sqrt(p_cm2 / (p_cm2 + PROTON_MASS * PROTON_MASS))
    sin_cm = math.sqrt(max(0.0, 1.0 - cos_cm * cos_cm))
    lab = math.atan2(sin_cm, gamma * (cos_cm + beta / beta_star))
    transfer = min(max(p_cm2 * (1.0 - cos_cm) / target, 0.0), energy)
    return energy - transfer, math.cos(lab)


@njit(cache=True)
def elastic_on_proton(energy: float, cos_cm: float) -> tuple[float, float, float, float]:
    """Energy and laboratory cos θ of the scattered and of the struck proton after a
    p + p scattering at ``cos_cm`` in the centre of mass (equal masses: the struck proton
    goes at the other azimuth)."""
    inverse_gamma2 = 2.0 * PROTON_MASS / (energy + 2.0 * PROTON_MASS)
    sin2 = max(0.0, 1.0 - cos_cm * cos_cm)
    a, b = 1.0 + cos_cm, 1.0 - cos_cm
    first = a / math.sqrt(a * a + sin2 * inverse_gamma2) if a > 0.0 else 0.0
    second = b / math.sqrt(b * b + sin2 * inverse_gamma2) if b > 0.0 else 0.0
    return 0.5 * energy * a, first, 0.5 * energy * b, second
