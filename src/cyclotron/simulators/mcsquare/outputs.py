"""Reading what an MCsquare run leaves in ``Outputs/``, in the ``VoxelGrid``'s layout and units.

MCsquare writes float32 MHD images over the CT's grid (stored as ``inputs`` wrote the CT:
(nz, ny, nx) on disk, x reversed). Its dose is Σ(ΔE / ρ) / V / N with ΔE in eV, ρ in g/cm³,
V in cm³ and N the primaries simulated (its ``ProtonsMU`` is 1 in our beam model), so the
file holds eV/g per primary: multiply by 1e-6 for MeV/g. Dose-averaged LET is written in
keV/µm (Σ ΔE·S / Σ ΔE, divided by 1e7 from eV/cm).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cyclotron.simulators.mcsquare.inputs import OUTPUT_DIR, from_mcsquare_layout

FloatArray = npt.NDArray[np.float64]

#: MeV/g per eV/g: MCsquare scores energy in eV.
DOSE_TO_MEV_PER_G = 1e-6
PRIMARIES = re.compile(r"Nbr primaries simulated:\s*(\d+)(?:\s*\((\d+) generated outside)?")
_HEADER = re.compile(r"^\s*(\w+)\s*=\s*(.*?)\s*$")
_TYPES = {"MET_FLOAT": "f4", "MET_DOUBLE": "f8"}


class OutputError(RuntimeError):
    """MCsquare left no usable output."""


@dataclass(frozen=True)
class PrimaryCount:
    """What MCsquare says it simulated: primaries, and those that never met the grid."""

    simulated: int
    outside: int = 0


def read_mhd(path: Path, shape: tuple[int, int, int]) -> FloatArray:
    """An MCsquare MHD image as a float64 array in the grid layout (nx, ny, nz)."""
    if not path.is_file():
        raise OutputError(f"MCsquare wrote no {path.name}")
    header: dict[str, str] = {}
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        found = _HEADER.match(line)
        if found:
            header[found.group(1)] = found.group(2)
    dims = tuple(int(v) for v in header.get("DimSize", "").split())
    if dims != shape:
        raise OutputError(f"{path.name} has DimSize {dims}, the grid is {shape}")
    kind = _TYPES.get(header.get("ElementType", ""))
    if kind is None:
        raise OutputError(f"{path.name}: unsupported ElementType {header.get('ElementType')!r}")
    order = ">" if header.get("ElementByteOrderMSB", "False").lower() == "true" else "<"
    raw = path.parent / header.get("ElementDataFile", path.with_suffix(".raw").name)
    values = np.fromfile(raw, dtype=order + kind)
    if values.size != shape[0] * shape[1] * shape[2]:
        raise OutputError(f"{raw.name} holds {values.size} values, the grid has {np.prod(shape)}")
    return np.asarray(from_mcsquare_layout(values.reshape(shape[::-1])), dtype=np.float64)


def read_dose(workdir: Path, shape: tuple[int, int, int]) -> FloatArray:
    """Dose to medium per voxel, MeV/g per simulated primary."""
    return read_mhd(workdir / OUTPUT_DIR / "Dose.mhd", shape) * DOSE_TO_MEV_PER_G


def read_let(workdir: Path, shape: tuple[int, int, int]) -> FloatArray:
    """Dose-averaged LET per voxel, keV/µm (0 where nothing was deposited)."""
    return read_mhd(workdir / OUTPUT_DIR / "LET.mhd", shape)


def primaries_simulated(stdout: str) -> PrimaryCount | None:
    """The ``Nbr primaries simulated: N`` MCsquare prints at the end, if it did."""
    found = PRIMARIES.findall(stdout)
    if not found:
        return None
    simulated, outside = found[-1]
    return PrimaryCount(int(simulated), int(outside or 0))


def deposited_energy(dose: FloatArray, density: FloatArray, spacing_cm: FloatArray) -> float:
    """Σ dose·mass over the grid: MeV per primary, for a dose in MeV/g and ρ in g/cm³."""
    volume = float(np.prod(spacing_cm))
    return float(np.sum(dose * density) * volume)
