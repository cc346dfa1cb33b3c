"""The files one MCsquare run reads, written from a ``VoxelGrid`` and a ``BeamSpec``.

MCsquare works in mm. It puts the CT's first corner at (0, 0, 0) and indexes voxels with x
reversed (``ix = floor((Lx - x) / dx)``), so the CT is written with the editor's x axis
flipped: MCsquare's coordinates are then the editor's minus the grid origin, axis for axis.

Each medium of the grid gets its own HU value (10 apart) and job-specific HU→density and
HU→material tables, so every voxel holds exactly the project's material and density.
Vacuum (ICRU 1000), black hole (ICRU 0) and voxels outside the world become MCsquare's Air
at ``VACUUM_DENSITY`` (they lose about 1e-6 of what water takes); MCsquare cannot absorb
particles, so a black hole is transparent here. Dose and LET there are reported as zero.
Dose is scored to medium (``Dose_to_Water_conversion Disabled``). The beam becomes a
one-field plan whose nozzle exit is the editor's beam position, with a beam model (BDL)
made for it and no range-shifter block (plan.py). Dose and LET are scored on the CT or on
an independent grid (scoring.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cyclotron.simulators.editor.records import (
    BLACK_HOLE_ICRU,
    VACUUM_ICRU,
    BeamSpec,
    Medium,
    VoxelGrid,
)
from cyclotron.simulators.mcsquare.plan import (
    MIN_DIVERGENCE_RAD,
    MIN_SPOT_MM,
    BeamGeometry,
    _bev_axes,
    bdl_text,
    beam_geometry,
    plan_layers,
    plan_text,
)
from cyclotron.simulators.mcsquare.scoring import scoring_settings

__all__ = [
    "MIN_DIVERGENCE_RAD",
    "MIN_SPOT_MM",
    "BeamGeometry",
    "_bev_axes",
    "bdl_text",
    "beam_geometry",
    "plan_text",
    "prepare_run",
]

CT_FILE = "CT.mhd"
DENSITY_TABLE = "HU_Density_Conversion.txt"
MATERIAL_TABLE = "HU_Material_Conversion.txt"
PLAN_FILE = "Plan.txt"
BDL_FILE = "BDL.txt"
CONFIG_FILE = "config.txt"
OUTPUT_DIR = "Outputs"

#: MCsquare's lowest-density stand-in for vacuum (Air, g/cm3).
VACUUM_DENSITY = 1e-6
#: The top of MCsquare's stopping-power tables (``Materials/*/PSTAR_Stop_Pow.dat``, MeV):
#: a beam above it runs outside them.
STOPPING_POWER_MAX_ENERGY = 400.0
HU_STEP = 10
AIR_LABEL = 13
BATCHES = 10

#: ICRU material id -> label in MCsquare's Materials/list.dat, for the same material
#: (elements by Z; compounds whose MCsquare composition matches within a few % by mass).
MCSQUARE_LABELS: dict[int, int] = {
    1: 1,  # hydrogen
    6: 2,  # carbon
    7: 3,  # nitrogen
    8: 4,  # oxygen
    13: 5,  # aluminium
    14: 6,  # silicon
    15: 7,  # phosphorus
    20: 8,  # calcium
    22: 73,  # titanium
    26: 9,  # iron
    29: 10,  # copper
    73: 77,  # tantalum
    74: 11,  # tungsten
    82: 12,  # lead
    103: 15,  # adipose tissue (ICRP) -> Adipose_Tissue
    104: AIR_LABEL,  # air, dry (near sea level) -> Air
    118: 30,  # blood (ICRP) -> Blood
    120: 38,  # cortical bone (ICRP) -> Bone_Cortical
    121: 79,  # boron carbide
    123: 23,  # brain (ICRP) -> Brain
    156: 34,  # eye lens (ICRP) -> Eye_Lens
    169: 71,  # borosilicate glass (Pyrex)
    190: 14,  # lung (ICRP) -> Lung
    201: 27,  # skeletal muscle (ICRP) -> Muscle_Skeletal
    219: 66,  # polycarbonate -> Lexan
    221: 81,  # polyethylene -> PEHD
    223: 64,  # PMMA
    226: 70,  # polystyrene
    250: 35,  # skin (ICRP) -> Skin
    258: 25,  # testis (ICRP) -> Testis
    261: 19,  # soft tissue (ICRP) -> Average_Soft_Tissue
    276: 17,  # water, liquid -> Water
}
_EMPTY_ICRU = (BLACK_HOLE_ICRU, VACUUM_ICRU)


def supported_icru(icru: int) -> bool:
    """Whether MCsquare has the material of this ICRU id (vacuum and black hole included)."""
    return icru in MCSQUARE_LABELS or icru in _EMPTY_ICRU


def mcsquare_material(medium: Medium) -> tuple[int, float]:
    """MCsquare's material label and the density (g/cm3) a voxel of ``medium`` gets."""
    if medium.icru in _EMPTY_ICRU:
        return AIR_LABEL, VACUUM_DENSITY
    label = MCSQUARE_LABELS.get(medium.icru)
    if label is None:
        raise ValueError(
            f"MCsquare has no material for ICRU {medium.icru} ({medium.name}); "
            f"supported ICRU ids: {', '.join(map(str, sorted(MCSQUARE_LABELS)))}, 0, 1000"
        )
    if not medium.density > 0:
        raise ValueError(f"{medium.name} (ICRU {medium.icru}) has density {medium.density}")
    return label, float(medium.density)


@dataclass(frozen=True)
class CtTables:
    """The CT as HU values in the grid's layout and the rows of the two HU tables."""

    hu: npt.NDArray[np.float32]  # (nx, ny, nz)
    rows: tuple[tuple[int, int, float], ...]  # (HU, material label, density)


def ct_tables(grid: VoxelGrid) -> CtTables:
    """One HU value per medium of the grid (and one for outside the world)."""
    rows = [(HU_STEP * i, *mcsquare_material(m)) for i, m in enumerate(grid.media)]
    outside = HU_STEP * len(grid.media)
    rows.append((outside, AIR_LABEL, VACUUM_DENSITY))
    medium_hu = np.array([row[0] for row in rows], dtype=np.float32)
    zone_medium = np.append(np.asarray(grid.zone_media, dtype=np.int64), len(grid.media))
    hu = medium_hu[zone_medium[grid.zones]]  # zone -1 picks the appended "outside" entry
    return CtTables(hu.astype(np.float32), tuple(rows))


def dead_voxels(grid: VoxelGrid) -> npt.NDArray[np.bool_]:
    """Voxels whose dose is reported as zero: outside the world, vacuum or black hole.

    MCsquare scores ΔE/ρ there at ``VACUUM_DENSITY``, about the dose air would get, which
    nothing in vacuum can receive.
    """
    hole = np.array([m.icru in _EMPTY_ICRU for m in grid.media] + [True])
    zone_medium = np.append(np.asarray(grid.zone_media, dtype=np.int64), len(grid.media))
    return np.asarray(hole[zone_medium[grid.zones]], dtype=np.bool_)


def to_mcsquare_layout(values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """A grid-layout (nx, ny, nz) array as MCsquare stores it: (nz, ny, nx), x reversed."""
    return np.ascontiguousarray(values[::-1, :, :].transpose(2, 1, 0))


def from_mcsquare_layout(raw: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """The inverse of ``to_mcsquare_layout``."""
    return np.ascontiguousarray(raw.transpose(2, 1, 0)[::-1, :, :])


def write_mhd(path: Path, values: npt.NDArray[np.float32], spacing_mm: tuple[float, ...]) -> None:
    """An MHD header and its float32 RAW from a grid-layout array."""
    nx, ny, nz = values.shape
    raw = path.with_suffix(".raw")
    to_mcsquare_layout(values).astype("<f4").tofile(raw)
    dx, dy, dz = spacing_mm
    path.write_text(
        "ObjectType = Image\nNDims = 3\n"
        f"DimSize = {nx} {ny} {nz}\n"
        f"ElementSpacing = {dx:.9g} {dy:.9g} {dz:.9g}\n"
        "Offset = 0 0 0\nElementType = MET_FLOAT\nElementByteOrderMSB = False\n"
        f"ElementDataFile = {raw.name}\n",
        encoding="ascii",
    )


def hu_table_texts(rows: tuple[tuple[int, int, float], ...]) -> tuple[str, str]:
    """The HU→density and HU→material tables (ascending HU, one row per medium)."""
    density = ["# HU\tdensity (g/cm3), one row per medium of this job"]
    material = ["# HU\tMCsquare material label (HU at or above the row's value)"]
    for hu, label, rho in rows:
        density.append(f"{hu}\t{rho:.9g}")
        # the lower bound sits halfway below the medium's HU, safe from float rounding
        material.append(f"{hu - HU_STEP // 2}\t{label}")
    return "\n".join(density) + "\n", "\n".join(material) + "\n"


def config_text(
    primaries: int,
    seed: int,
    threads: int,
    *,
    heavy_secondaries: bool = True,
    scoring: dict[str, str] | None = None,
) -> str:
    """config.txt: seed, primaries, threads, Dose and LET as MHD, dose to medium.

    Without ``heavy_secondaries`` the deuterons and alphas of nuclear events deposit their
    energy where they are born instead of being transported; MCsquare scores no LET for
    such deposits, so its LET is then that of protons alone (primary and secondary).
    ``scoring`` adds the lines of an independent scoring grid (``scoring.scoring_settings``).
    """
    settings = {
        "Num_Threads": threads,
        "RNG_Seed": seed,
        # MCsquare runs 10 batches of floor(N / 10): ask for a multiple of 10 to get >= N
        "Num_Primaries": BATCHES * math.ceil(primaries / BATCHES),
        "CT_File": CT_FILE,
        "HU_Density_Conversion_File": DENSITY_TABLE,
        "HU_Material_Conversion_File": MATERIAL_TABLE,
        "BDL_Machine_Parameter_File": BDL_FILE,
        "BDL_Plan_File": PLAN_FILE,
        "Simulate_Nuclear_Interactions": True,
        "Simulate_Secondary_Deuterons": heavy_secondaries,
        "Simulate_Secondary_Alphas": heavy_secondaries,
        "Compute_stat_uncertainty": True,
        "Output_Directory": OUTPUT_DIR,
        "Dose_MHD_Output": True,
        "LET_MHD_Output": True,
        "Energy_MHD_Output": False,
        "LET_Calculation_Method": "StopPow",
        "Dose_to_Water_conversion": "Disabled",
        "Dose_Segmentation": False,
        **(scoring or {}),
    }
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def prepare_run(
    workdir: Path,
    grid: VoxelGrid,
    beam: BeamSpec,
    primaries: int,
    seed: int,
    threads: int = 1,
    *,
    heavy_secondaries: bool = True,
    scoring: VoxelGrid | None = None,
) -> Path:
    """Write every input of one run into ``workdir``; returns the config.txt path. MCsquare
    scores on ``scoring`` (``scoring.scoring_grid``) where it is given and not ``grid``."""
    if primaries < 1 or seed < 1 or threads < 1:
        raise ValueError(f"need primaries, seed and threads >= 1: {primaries}, {seed}, {threads}")
    if not min(beam.energies) > 0:
        raise ValueError(f"beam energy must be positive, got {min(beam.energies)} MeV")
    workdir.mkdir(parents=True, exist_ok=True)
    tables = ct_tables(grid)
    spacing_mm = tuple(float(10 * s) for s in grid.spacing)
    write_mhd(workdir / CT_FILE, tables.hu, spacing_mm)
    density, material = hu_table_texts(tables.rows)
    (workdir / DENSITY_TABLE).write_text(density, encoding="ascii")
    (workdir / MATERIAL_TABLE).write_text(material, encoding="ascii")
    geometry = beam_geometry(grid, beam)
    layers = plan_layers(grid, beam, geometry)
    (workdir / PLAN_FILE).write_text(plan_text(layers, geometry), encoding="ascii")
    (workdir / BDL_FILE).write_text(bdl_text(layers, geometry), encoding="ascii")
    config = workdir / CONFIG_FILE
    settings = scoring_settings(grid if scoring is None else scoring, grid)
    text = config_text(
        primaries, seed, threads, heavy_secondaries=heavy_secondaries, scoring=settings
    )
    config.write_text(text, encoding="ascii")
    return config
