"""The files one MCsquare run reads, written from a ``VoxelGrid`` and a ``BeamSpec``.

MCsquare works in mm. It puts the CT's first corner at (0, 0, 0) and indexes voxels with x
reversed (``ix = floor((Lx - x) / dx)``), so the CT is written with the editor's x axis
flipped: MCsquare's coordinates are then the editor's minus the grid origin, axis for axis.

Each medium of the grid gets its own HU value (10 apart) and job-specific HU→density and
HU→material tables, so every voxel holds exactly the project's material and density.
Vacuum (ICRU 1000), black hole (ICRU 0) and voxels outside the world become MCsquare's Air
at ``VACUUM_DENSITY`` (they lose about 1e-6 of what water takes); MCsquare cannot absorb
particles, so a black hole is transparent here. Dose and LET there are reported as zero.
Dose is scored to medium (``Dose_to_Water_conversion Disabled``). The beam is one spot of
a one-field plan whose nozzle exit is the editor's beam position; its beam model (BDL) is
made for it and has no range-shifter block.
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

CT_FILE = "CT.mhd"
DENSITY_TABLE = "HU_Density_Conversion.txt"
MATERIAL_TABLE = "HU_Material_Conversion.txt"
PLAN_FILE = "Plan.txt"
BDL_FILE = "BDL.txt"
CONFIG_FILE = "config.txt"
OUTPUT_DIR = "Outputs"

#: MCsquare's lowest-density stand-in for vacuum (Air, g/cm3).
VACUUM_DENSITY = 1e-6
HU_STEP = 10
AIR_LABEL = 13
#: How far upstream of the editor's beam position the particles start (mm): a source
#: exactly on a CT face would sit one voxel past the grid.
SOURCE_SETBACK_MM = 1e-3
#: Nozzle exit to isocentre (mm): the isocentre is put this far downstream of the start.
NOZZLE_MM = 1.0
# Floors that keep MCsquare's 2x2 phase-space diagonalisation finite for a point source.
MIN_SPOT_MM = 1e-3
MIN_DIVERGENCE_RAD = 1e-6
CORRELATION = 1e-3
SM_DISTANCE_MM = 1e4
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


@dataclass(frozen=True)
class BeamGeometry:
    """The beam as MCsquare's plan states it (angles in degrees, positions in mm)."""

    gantry_deg: float
    couch_deg: float
    isocenter_mm: tuple[float, float, float]
    nozzle_mm: float
    spot_mm: tuple[float, float]  # sigma along the BDL's x and y
    divergence_rad: tuple[float, float]


def _bev_axes(gantry: float, couch: float) -> tuple[npt.NDArray[np.float64], ...]:
    """MCsquare's beam direction and the CT-frame vectors of its spot x and y axes."""

    def to_ct(v: tuple[float, float, float]) -> npt.NDArray[np.float64]:
        x, y, z = v  # MCsquare's compute_beam_model.c: rotateY(gantry), rotateZ(-couch), XZY
        x, z = (
            x * math.cos(gantry) + z * math.sin(gantry),
            -x * math.sin(gantry) + z * math.cos(gantry),
        )
        x, y = x * math.cos(couch) + y * math.sin(couch), -x * math.sin(couch) + y * math.cos(couch)
        return np.array([x, z, y])

    # the spot is sampled in BEV and turned by pi about x: (X, Y, 0) -> (X, -Y, 0)
    return to_ct((0.0, 0.0, -1.0)), to_ct((1.0, 0.0, 0.0)), to_ct((0.0, -1.0, 0.0))


def _ray_meets_box(
    start: npt.NDArray[np.float64],
    direction: npt.NDArray[np.float64],
    size: npt.NDArray[np.float64],
) -> bool:
    """Whether the ray from ``start`` along ``direction`` crosses the box [0, size]."""
    near, far = 0.0, math.inf
    for p, d, s in zip(start, direction, size, strict=True):
        if abs(d) < 1e-12:
            if not 0.0 <= p <= s:
                return False
            continue
        t0, t1 = sorted(((0.0 - p) / d, (s - p) / d))
        near, far = max(near, t0), min(far, t1)
    return near < far


def beam_geometry(grid: VoxelGrid, beam: BeamSpec) -> BeamGeometry:
    """Gantry, couch and isocentre that start the spot at the editor's beam position."""
    if beam.particle_z != 1 or beam.particle_a != 1:
        raise ValueError(
            f"MCsquare transports protons only, not Z={beam.particle_z} A={beam.particle_a}"
        )
    direction = np.asarray(beam.direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    u, v, w = (float(c) for c in direction)
    gantry = math.acos(max(-1.0, min(1.0, -v)))
    couch = math.atan2(w, -u) if math.hypot(u, w) > 1e-12 else 0.0
    _, axis_x, _ = _bev_axes(gantry, couch)
    sigmas = (10 * beam.sigma_x, 10 * beam.sigma_y)
    divergences = (beam.divergence_x, beam.divergence_y)
    if abs(axis_x[0]) < abs(axis_x[1]):  # the BDL's x lies along the editor's y: swap
        sigmas, divergences = sigmas[::-1], divergences[::-1]
    start = 10 * (np.asarray(beam.position, dtype=np.float64) - grid.origin)
    start = start - SOURCE_SETBACK_MM * direction
    if not _ray_meets_box(start, direction, 10 * grid.spacing * np.array(grid.shape)):
        # MCsquare 1.1 does not drop such particles cleanly: it scores garbage at a face
        raise ValueError("the beam never enters the voxel grid: check its position and direction")
    iso = start + NOZZLE_MM * direction
    return BeamGeometry(
        gantry_deg=math.degrees(gantry),
        couch_deg=math.degrees(couch),
        isocenter_mm=(float(iso[0]), float(iso[1]), float(iso[2])),
        nozzle_mm=NOZZLE_MM,
        spot_mm=(max(sigmas[0], MIN_SPOT_MM), max(sigmas[1], MIN_SPOT_MM)),
        divergence_rad=(
            max(divergences[0], MIN_DIVERGENCE_RAD),
            max(divergences[1], MIN_DIVERGENCE_RAD),
        ),
    )


def plan_text(energy: float, geometry: BeamGeometry) -> str:
    """A one-field, one-layer, one-spot PBS plan (spot at the isocentre, weight 1)."""
    iso = "\t".join(f"{c:.6f}" for c in geometry.isocenter_mm)
    lines = [
        "#TREATMENT-PLAN-DESCRIPTION", "#PlanName", "cyclotron", "#NumberOfFractions", "1",
        "##FractionID", "1", "##NumberOfFields", "1", "###FieldsID", "1",
        "#TotalMetersetWeightOfAllFields", "1.000000", "",
        "#FIELD-DESCRIPTION", "###FieldID", "1", "###FinalCumulativeMeterSetWeight", "1.000000",
        "###GantryAngle", f"{geometry.gantry_deg:.9f}",
        "###PatientSupportAngle", f"{geometry.couch_deg:.9f}",
        "###IsocenterPosition", iso, "###NumberOfControlPoints", "1", "",
        "#SPOTS-DESCRIPTION", "####ControlPointIndex", "1", "####SpotTunnedID", "1",
        "####CumulativeMetersetWeight", "1.000000", "####Energy (MeV)", f"{energy:.6f}",
        "####NbOfScannedSpots", "1", "####X Y Weight", "0.000000 0.000000 1.000000",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def bdl_text(beam: BeamSpec, geometry: BeamGeometry) -> str:
    """A single-Gaussian UPenn beam model with two rows bracketing the beam's energy.

    No range-shifter block: one declared while the plan has none loses every primary.
    ``ProtonsMU`` is 1, so MCsquare's dose is per simulated primary.
    """
    spread = 100.0 * beam.energy_sigma / beam.energy  # MCsquare: sigma in % of the energy
    (sx, sy), (dx, dy) = geometry.spot_mm, geometry.divergence_rad
    c = CORRELATION
    optics = f"{sx:.6g}\t{dx:.6g}\t{c}\t{sy:.6g}\t{dy:.6g}\t{c}"
    rows = [
        f"{e:.6f}\t{e:.6f}\t{spread:.6g}\t1.0\t1.0\t{optics}\t0.0\t{optics}"
        for e in (beam.energy * 0.99, beam.energy * 1.01)
    ]
    header = (
        "NominalEnergy\tMeanEnergy\tEnergySpread\tProtonsMU\tWeight1\tSpotSize1x\tDivergence1x"
        "\tCorrelation1x\tSpotSize1y\tDivergence1y\tCorrelation1y\tWeight2\tSpotSize2x"
        "\tDivergence2x\tCorrelation2x\tSpotSize2y\tDivergence2y\tCorrelation2y"
    )
    lines = [
        "--UPenn beam model (double gaussian)--",  # MCsquare selects its reader on this line
        "# written by cyclotron for one editor beam", "",
        "Nozzle exit to Isocenter distance", f"{geometry.nozzle_mm:.6f}", "",
        "SMX to Isocenter distance", f"{SM_DISTANCE_MM:.1f}", "",
        "SMY to Isocenter distance", f"{SM_DISTANCE_MM:.1f}", "",
        "Beam parameters", "2 energies", "", header, *rows,
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def config_text(primaries: int, seed: int, threads: int) -> str:
    """config.txt: seed, primaries, threads, Dose and LET as MHD, dose to medium."""
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
        "Compute_stat_uncertainty": True,
        "Output_Directory": OUTPUT_DIR,
        "Dose_MHD_Output": True,
        "LET_MHD_Output": True,
        "Energy_MHD_Output": False,
        "LET_Calculation_Method": "StopPow",
        "Dose_to_Water_conversion": "Disabled",
        "Dose_Segmentation": False,
    }
    return "".join(f"{key} {value}\n" for key, value in settings.items())


def prepare_run(
    workdir: Path, grid: VoxelGrid, beam: BeamSpec, primaries: int, seed: int, threads: int = 1
) -> Path:
    """Write every input of one run into ``workdir``; returns the config.txt path."""
    if primaries < 1 or seed < 1 or threads < 1:
        raise ValueError(f"need primaries, seed and threads >= 1: {primaries}, {seed}, {threads}")
    if not beam.energy > 0:
        raise ValueError(f"beam energy must be positive, got {beam.energy} MeV")
    workdir.mkdir(parents=True, exist_ok=True)
    tables = ct_tables(grid)
    spacing_mm = tuple(float(10 * s) for s in grid.spacing)
    write_mhd(workdir / CT_FILE, tables.hu, spacing_mm)
    density, material = hu_table_texts(tables.rows)
    (workdir / DENSITY_TABLE).write_text(density, encoding="ascii")
    (workdir / MATERIAL_TABLE).write_text(material, encoding="ascii")
    geometry = beam_geometry(grid, beam)
    (workdir / PLAN_FILE).write_text(plan_text(beam.energy, geometry), encoding="ascii")
    (workdir / BDL_FILE).write_text(bdl_text(beam, geometry), encoding="ascii")
    config = workdir / CONFIG_FILE
    config.write_text(config_text(primaries, seed, threads), encoding="ascii")
    return config
