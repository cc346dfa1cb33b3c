"""Material data of the ``builtin`` engine, looked up by the editor's ICRU id.

Every material is a list of elements with mass fractions plus its mean excitation energy I;
what the physics needs (Z/A, radiation length X0, Gottschalk's scattering length X_S, the
nuclear make-up) follows from that list. Compounds use the NIST/ICRU 37 compositions and
I-values, except water: it uses I = 78 eV (ICRU 90), so its ranges run about 0.5 % longer
than NIST PSTAR's (I = 75 eV). Elements are ICRU ids 1–98 (the id is Z), with the ICRU 37
I-value where one is listed here and Bragg's rule of thumb otherwise. ICRU 1000 is vacuum
(no loss, no scattering) and ICRU 0 the black hole (absorbs whatever enters it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from cyclotron.simulators.editor.records import BLACK_HOLE_ICRU, VACUUM_ICRU

AVOGADRO = 6.02214076e23
FINE_STRUCTURE = 1.0 / 137.035999
ELECTRON_RADIUS = 2.8179403262e-13  # cm

# The energies the physics tables cover (MeV), log-spaced (physics.py); here so that the
# plug-in checks a project without loading the engine's numerical code (NumPy, numba).
TABLE_MIN_ENERGY = 0.05
TABLE_MAX_ENERGY = 600.0

# Standard atomic weights, Z = 1..98 (whole numbers for elements without a stable isotope).
ATOMIC_MASS = (
    1.008, 4.0026, 6.94, 9.0122, 10.81, 12.011, 14.007, 15.999, 18.998, 20.180,
    22.990, 24.305, 26.982, 28.085, 30.974, 32.06, 35.45, 39.948, 39.098, 40.078,
    44.956, 47.867, 50.942, 51.996, 54.938, 55.845, 58.933, 58.693, 63.546, 65.38,
    69.723, 72.630, 74.922, 78.971, 79.904, 83.798, 85.468, 87.62, 88.906, 91.224,
    92.906, 95.95, 98.0, 101.07, 102.91, 106.42, 107.87, 112.41, 114.82, 118.71,
    121.76, 127.60, 126.90, 131.29, 132.91, 137.33, 138.91, 140.12, 140.91, 144.24,
    145.0, 150.36, 151.96, 157.25, 158.93, 162.50, 164.93, 167.26, 168.93, 173.05,
    174.97, 178.49, 180.95, 183.84, 186.21, 190.23, 192.22, 195.08, 196.97, 200.59,
    204.38, 207.2, 208.98, 209.0, 210.0, 222.0, 223.0, 226.0, 227.0, 232.04,
    231.04, 238.03, 237.0, 244.0, 243.0, 247.0, 247.0, 251.0,
)  # fmt: skip
SYMBOLS = (
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl",
    "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
    "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu",
    "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt",
    "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np",
    "Pu", "Am", "Cm", "Bk", "Cf",
)  # fmt: skip
# ICRU 37 mean excitation energies of elements (eV); the others follow Bragg's rule of thumb.
ELEMENT_I = {
    1: 19.2, 2: 41.8, 3: 40.0, 4: 63.7, 5: 76.0, 6: 78.0, 7: 82.0, 8: 95.0, 9: 115.0,
    10: 137.0, 11: 149.0, 12: 156.0, 13: 166.0, 14: 173.0, 15: 173.0, 16: 180.0, 17: 174.0,
    18: 188.0, 19: 190.0, 20: 191.0, 22: 233.0, 26: 286.0, 29: 322.0, 30: 330.0, 47: 470.0,
    50: 488.0, 73: 718.0, 74: 727.0, 78: 790.0, 79: 790.0, 82: 823.0, 92: 890.0,
}  # fmt: skip

Kind = Literal["matter", "vacuum", "black_hole"]


@dataclass(frozen=True)
class Material:
    """A material as the physics sees it: elements (Z, mass fraction) and its I-value."""

    icru: int
    name: str
    elements: tuple[tuple[int, float], ...]
    mean_excitation: float  # eV
    kind: Kind = "matter"

    @property
    def z_over_a(self) -> float:
        """Mean Z/A (mol/g), weighted by mass."""
        return sum(w * z / ATOMIC_MASS[z - 1] for z, w in self.elements)

    @property
    def radiation_length(self) -> float:
        """Radiation length X0 (g/cm²), Tsai's formula combined by mass fractions."""
        return 1.0 / sum(w / _element_radiation_length(z) for z, w in self.elements)

    @property
    def scattering_length(self) -> float:
        """Gottschalk's scattering length X_S (g/cm²) for the scattering power."""
        return 1.0 / sum(w / _element_scattering_length(z) for z, w in self.elements)


class UnknownMaterial(KeyError):
    """An ICRU id the ``builtin`` engine has no data for."""

    def __init__(self, icru: int) -> None:
        super().__init__(f"ICRU material {icru} is not supported by the builtin engine")
        self.icru = icru

    def __str__(self) -> str:
        return str(self.args[0])


def _element_radiation_length(z: int) -> float:
    """X0 of one element (g/cm²), Tsai (PDG eq. 34.26) with the Coulomb correction."""
    a2 = (FINE_STRUCTURE * z) ** 2
    coulomb = a2 * (1.0 / (1.0 + a2) + 0.20206 - 0.0369 * a2 + 0.0083 * a2**2 - 0.002 * a2**3)
    tsai = {1: (5.31, 6.144), 2: (4.79, 5.621), 3: (4.74, 5.805), 4: (4.71, 5.924)}
    l_rad, l_rad_prime = tsai.get(
        z, (math.log(184.15 * z ** (-1 / 3)), math.log(1194.0 * z ** (-2 / 3)))
    )
    inverse = (
        4.0 * FINE_STRUCTURE * ELECTRON_RADIUS**2 * AVOGADRO / ATOMIC_MASS[z - 1]
        * (z * z * (l_rad - coulomb) + z * l_rad_prime)
    )  # fmt: skip
    return 1.0 / inverse


def _element_scattering_length(z: int) -> float:
    """Gottschalk's (2010) scattering length X_S of one element (g/cm²)."""
    a = ATOMIC_MASS[z - 1]
    log_term = 2.0 * math.log(33219.0 * (a * z) ** (-1 / 3)) - 1.0
    return 1.0 / (FINE_STRUCTURE * AVOGADRO * ELECTRON_RADIUS**2 * z * z / a * log_term)


def _element(z: int) -> Material:
    bragg = 12.0 * z + 7.0 if z < 13 else 9.76 * z + 58.8 * z ** (-0.19)
    return Material(z, f"ELEMENT {SYMBOLS[z - 1]}", ((z, 1.0),), ELEMENT_I.get(z, bragg))


def _compound(icru: int, name: str, i_value: float, fractions: dict[int, float]) -> Material:
    total = sum(fractions.values())
    elements = tuple((z, w / total) for z, w in sorted(fractions.items()))
    return Material(icru, name, elements, i_value)


_COMPOUNDS = (
    _compound(99, "A-150 TISSUE-EQUIVALENT PLASTIC", 65.1,
              {1: .101327, 6: .775501, 7: .035057, 8: .052316, 9: .017422, 20: .018378}),
    _compound(103, "ADIPOSE TISSUE (ICRP)", 63.2,
              {1: .119477, 6: .637240, 7: .007970, 8: .232333, 11: .0005, 15: .00016,
               16: .00073, 17: .00119, 19: .00032}),
    _compound(104, "AIR, DRY (NEAR SEA LEVEL)", 85.7,
              {6: .000124, 7: .755267, 8: .231781, 18: .012827}),
    _compound(118, "BLOOD (ICRP)", 75.2,
              {1: .101866, 6: .100020, 7: .029640, 8: .759414, 11: .00185, 15: .00035,
               16: .00185, 17: .00278, 19: .00163, 26: .00046}),
    _compound(119, "BONE, COMPACT (ICRU)", 91.9,
              {1: .063984, 6: .278, 7: .027, 8: .410016, 12: .002, 15: .07, 16: .002, 20: .147}),
    _compound(120, "BONE, CORTICAL (ICRP)", 106.4,
              {1: .047234, 6: .144330, 7: .041990, 8: .446096, 12: .0022, 15: .104970,
               16: .00315, 20: .209930}),
    _compound(123, "BRAIN (ICRP)", 73.3,
              {1: .110667, 6: .125420, 7: .013280, 8: .737723, 11: .00184, 15: .00354,
               16: .00177, 17: .00236, 19: .0031}),
    _compound(190, "LUNG (ICRP)", 75.3,
              {1: .101278, 6: .102310, 7: .028650, 8: .757072, 11: .00184, 12: .00073,
               15: .0008, 16: .00225, 17: .00266, 19: .00194}),
    _compound(201, "MUSCLE, SKELETAL (ICRP)", 75.3,
              {1: .100637, 6: .107830, 7: .027680, 8: .754773, 11: .00075, 15: .0018,
               16: .00241, 17: .00079, 19: .00302}),
    _compound(202, "MUSCLE, STRIATED (ICRU)", 74.7,
              {1: .101997, 6: .123, 7: .035, 8: .729003, 11: .0008, 12: .0002, 15: .002,
               16: .005, 19: .003}),
    _compound(221, "POLYETHYLENE", 57.4, {1: .143711, 6: .856289}),
    _compound(223, "POLYMETHYL METHACRYLATE (PMMA)", 74.0, {1: .080538, 6: .599848, 8: .319614}),
    _compound(226, "POLYSTYRENE", 68.7, {1: .077418, 6: .922582}),
    _compound(261, "TISSUE, SOFT (ICRP)", 72.3,
              {1: .104472, 6: .232190, 7: .024880, 8: .630238, 11: .00113, 15: .00133,
               16: .00199, 17: .00134, 19: .00199}),
    _compound(262, "TISSUE, SOFT (ICRU FOUR-COMPONENT)", 74.9,
              {1: .101172, 6: .111, 7: .026, 8: .761828}),
    _compound(276, "WATER, LIQUID", 78.0, {1: .111894, 8: .888106}),
    _compound(906, "GRAPHITE", 78.0, {6: 1.0}),
)  # fmt: skip

_SPECIAL = (
    Material(VACUUM_ICRU, "VACUUM", (), 0.0, "vacuum"),
    Material(BLACK_HOLE_ICRU, "BLACK HOLE", (), 0.0, "black_hole"),
)

MATERIALS: dict[int, Material] = {
    m.icru: m for m in (*(_element(z) for z in range(1, len(SYMBOLS) + 1)), *_COMPOUNDS, *_SPECIAL)
}


def supported(icru: int) -> bool:
    """Whether the ``builtin`` engine can transport protons through ICRU material ``icru``."""
    return icru in MATERIALS


def material(icru: int) -> Material:
    """The material of ICRU id ``icru``; raises ``UnknownMaterial`` naming an unknown id."""
    try:
        return MATERIALS[icru]
    except KeyError:
        raise UnknownMaterial(icru) from None
