"""The beam as MCsquare takes it: a PBS plan of spots and a beam model (BDL) made for it.

The plan has one field whose nozzle exit is the editor's beam position (the isocentre
``NOZZLE_MM`` downstream of it). Its spots are grouped into layers (control points), one per
energy and set of optics (energy spread, spot widths); each layer gets a row of the BDL,
named by a nominal energy of its own (the layer's energy, nudged by ``KEY_STEP_MEV`` where
two layers share one) whose mean energy is the layer's. So:

- a simple Gaussian beam is one spot on the axis;
- a spot list (``BeamSpec.spots``) is its spots, each at its centre with its weight;
- a flat square or circle is a grid of Gaussian spots at most one voxel apart, each
  ``FLAT_SIGMA_PER_PITCH`` of the pitch wide (flat to 2e-3 between them; the edges soften
  by that sigma), weighted by the share of its cell inside the field;
- the SAD is MCsquare's own: the BDL's SMX/SMY-to-isocentre distances, the spots' centres
  scaled from the start plane to the isocentre. Without SAD they are ``PARALLEL_SM_MM``.

Weights are normalised to 1 (``ProtonsMU`` is 1), so the dose is per simulated primary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cyclotron.simulators.editor.records import (
    FLAT_CIRCLE,
    FLAT_SQUARE,
    BeamSpec,
    VoxelGrid,
    beam_axes,
)

#: How far upstream of the editor's beam position the particles start (mm): a source
#: exactly on a CT face would sit one voxel past the grid.
SOURCE_SETBACK_MM = 1e-3
#: Nozzle exit to isocentre (mm): the isocentre is put this far downstream of the start.
NOZZLE_MM = 1.0
# Floors that keep MCsquare's 2x2 phase-space diagonalisation finite for a point source.
MIN_SPOT_MM = 1e-3
MIN_DIVERGENCE_RAD = 1e-6
CORRELATION = 1e-3
#: The scanning magnets' distance of a parallel beam (mm): spots 5 cm off the axis then
#: lean by 5e-7 rad.
PARALLEL_SM_MM = 1e8
KEY_STEP_MEV = 1e-3
FLAT_SIGMA_PER_PITCH = 0.6
MAX_FLAT_SPOTS = 20_000
_CELL_SAMPLES = 8


@dataclass(frozen=True)
class BeamGeometry:
    """The beam as MCsquare's plan states it (angles in degrees, positions in mm).

    ``spot_mm`` and ``divergence_rad`` are along the BDL's x and y (the editor beam's y and
    x where ``swapped``); ``axes`` are the CT-frame vectors of MCsquare's spot x and y.
    """

    gantry_deg: float
    couch_deg: float
    isocenter_mm: tuple[float, float, float]
    nozzle_mm: float
    spot_mm: tuple[float, float]  # sigma along the BDL's x and y
    divergence_rad: tuple[float, float]
    swapped: bool = False
    sm_mm: tuple[float, float] = (PARALLEL_SM_MM, PARALLEL_SM_MM)
    axes: tuple[tuple[float, ...], tuple[float, ...]] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


@dataclass(frozen=True)
class Layer:
    """One control point: spots of one energy and one set of optics."""

    key: float  # the nominal energy naming its BDL row (MeV)
    energy: float  # mean energy (MeV)
    energy_sigma: float  # MeV
    spot_mm: tuple[float, float]  # sigma along the BDL's x and y
    spots: tuple[tuple[float, float, float], ...]  # (X, Y at the isocentre in mm, weight)


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
    """Gantry, couch and isocentre that start the beam at the editor's beam position."""
    if beam.particle_z != 1 or beam.particle_a != 1:
        raise ValueError(
            f"MCsquare transports protons only, not Z={beam.particle_z} A={beam.particle_a}"
        )
    direction = np.asarray(beam.direction, dtype=np.float64)
    direction = direction / np.linalg.norm(direction)
    u, v, w = (float(c) for c in direction)
    gantry = math.acos(max(-1.0, min(1.0, -v)))
    couch = math.atan2(w, -u) if math.hypot(u, w) > 1e-12 else 0.0
    _, axis_x, axis_y = _bev_axes(gantry, couch)
    sigmas = (10 * beam.sigma_x, 10 * beam.sigma_y)
    divergences = (beam.divergence_x, beam.divergence_y)
    sads = tuple(10 * s + NOZZLE_MM if s > 0 else PARALLEL_SM_MM for s in (beam.sad_x, beam.sad_y))
    swapped = abs(axis_x[0]) < abs(axis_x[1])
    if swapped:  # the BDL's x lies along the editor's y: swap
        sigmas, divergences, sads = sigmas[::-1], divergences[::-1], sads[::-1]
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
        swapped=swapped,
        sm_mm=(float(sads[0]), float(sads[1])),
        axes=(tuple(map(float, axis_x)), tuple(map(float, axis_y))),
    )


def _flat_spots(beam: BeamSpec, pitch_mm: float) -> tuple[list[tuple[float, float, float]], float]:
    """A flat field as spots (x, y in cm along the beam's axes, weight) and their sigma (cm)."""
    half_x, half_y = beam.sigma_x, beam.sigma_y
    pitch = max(pitch_mm / 10, math.sqrt(4 * half_x * half_y / MAX_FLAT_SPOTS))
    nx, ny = max(1, math.ceil(2 * half_x / pitch)), max(1, math.ceil(2 * half_y / pitch))
    px, py = 2 * half_x / nx, 2 * half_y / ny
    xs = -half_x + (np.arange(nx) + 0.5) * px
    ys = -half_y + (np.arange(ny) + 0.5) * py
    spots = []
    samples = (np.arange(_CELL_SAMPLES) + 0.5) / _CELL_SAMPLES - 0.5
    for x in xs:
        for y in ys:
            if beam.shape == FLAT_CIRCLE:
                sx, sy = np.meshgrid(x + samples * px, y + samples * py)
                weight = float(np.mean(sx**2 + sy**2 <= half_x**2))
            else:
                weight = 1.0
            if weight > 0:
                spots.append((float(x), float(y), weight))
    return spots, FLAT_SIGMA_PER_PITCH * max(px, py)


def plan_layers(grid: VoxelGrid, beam: BeamSpec, geometry: BeamGeometry) -> tuple[Layer, ...]:
    """The beam's spots as layers of the plan (see above), weights summing to 1."""
    a, b = beam_axes(beam.direction)
    axis_x, axis_y = (np.array(axis) for axis in geometry.axes)
    # (energy, sigma, widths along the beam's axes in cm) -> spots (x, y in cm, weight)
    groups: dict[tuple[float, float, float, float], list[tuple[float, float, float]]] = {}
    if beam.spots:
        for spot in beam.spots:
            key = (spot.energy, spot.energy_sigma, spot.sigma_x, spot.sigma_y)
            groups.setdefault(key, []).append((spot.x, spot.y, spot.weight))
    elif beam.shape in (FLAT_SQUARE, FLAT_CIRCLE):
        lateral = [10 * s for axis, s in enumerate(grid.spacing) if abs(beam.direction[axis]) < 0.9]
        spots, sigma = _flat_spots(beam, min(lateral or [1.0]))
        groups[(beam.energy, beam.energy_sigma, sigma, sigma)] = spots
    else:
        groups[(beam.energy, beam.energy_sigma, beam.sigma_x, beam.sigma_y)] = [(0.0, 0.0, 1.0)]
    total = sum(w for spots in groups.values() for _, _, w in spots)
    if not total > 0:
        raise ValueError("spot weights must not be negative, and one must be positive")
    scale = [geometry.sm_mm[0] / (geometry.sm_mm[0] - NOZZLE_MM)] * 2
    scale[1] = geometry.sm_mm[1] / (geometry.sm_mm[1] - NOZZLE_MM)
    layers: list[Layer] = []
    previous = -math.inf
    for (energy, spread, sigma_x, sigma_y), spots in sorted(groups.items()):
        widths = (10 * sigma_x, 10 * sigma_y)
        if geometry.swapped:
            widths = widths[::-1]
        placed = []
        for x, y, weight in spots:
            offset = 10 * (x * a + y * b)  # mm, in the CT frame (the editor's axes)
            placed.append(
                (  # a spot's Y runs against the axis its spread is sampled along
                    float(offset @ axis_x) * scale[0],
                    0.0 - float(offset @ axis_y) * scale[1],
                    weight / total,
                )
            )
        nominal = max(round(energy, 6), round(previous + KEY_STEP_MEV, 6))
        previous = nominal
        spot_mm = (max(widths[0], MIN_SPOT_MM), max(widths[1], MIN_SPOT_MM))
        layers.append(Layer(nominal, energy, spread, spot_mm, tuple(placed)))
    return tuple(layers)


def plan_text(layers: tuple[Layer, ...], geometry: BeamGeometry) -> str:
    """A one-field PBS plan: one control point per layer, its spots and their weights."""
    iso = "\t".join(f"{c:.6f}" for c in geometry.isocenter_mm)
    lines = [
        "#TREATMENT-PLAN-DESCRIPTION", "#PlanName", "cyclotron", "#NumberOfFractions", "1",
        "##FractionID", "1", "##NumberOfFields", "1", "###FieldsID", "1",
        "#TotalMetersetWeightOfAllFields", "1.000000", "",
        "#FIELD-DESCRIPTION", "###FieldID", "1", "###FinalCumulativeMeterSetWeight", "1.000000",
        "###GantryAngle", f"{geometry.gantry_deg:.9f}",
        "###PatientSupportAngle", f"{geometry.couch_deg:.9f}",
        "###IsocenterPosition", iso, "###NumberOfControlPoints", f"{len(layers)}", "",
        "#SPOTS-DESCRIPTION",
    ]  # fmt: skip
    cumulative = 0.0
    for index, layer in enumerate(layers, start=1):
        cumulative += sum(w for _, _, w in layer.spots)
        lines += [
            "####ControlPointIndex", f"{index}", "####SpotTunnedID", "1",
            "####CumulativeMetersetWeight", f"{cumulative:.9f}",
            "####Energy (MeV)", f"{layer.key:.6f}",
            "####NbOfScannedSpots", f"{len(layer.spots)}", "####X Y Weight",
            *(f"{x:.6f} {y:.6f} {w:.9f}" for x, y, w in layer.spots),
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def bdl_text(layers: tuple[Layer, ...], geometry: BeamGeometry) -> str:
    """A single-Gaussian UPenn beam model: a row per layer, named by its key, and a row
    either side of them (1 % below the first key and above the last) with the edge layers'
    optics.

    No range-shifter block: one declared while the plan has none loses every primary.
    ``ProtonsMU`` is 1, so MCsquare's dose is per simulated primary.
    """
    dx, dy = geometry.divergence_rad
    c = CORRELATION

    def row(nominal: float, layer: Layer, mean: float) -> str:
        spread = 100.0 * layer.energy_sigma / layer.energy  # MCsquare: sigma in % of E
        sx, sy = layer.spot_mm
        optics = f"{sx:.6g}\t{dx:.6g}\t{c}\t{sy:.6g}\t{dy:.6g}\t{c}"
        return f"{nominal:.6f}\t{mean:.6f}\t{spread:.6g}\t1.0\t1.0\t{optics}\t0.0\t{optics}"

    first, last = layers[0], layers[-1]
    rows = [row(first.key * 0.99, first, first.energy * 0.99)]
    if len(layers) > 1:
        rows += [row(layer.key, layer, layer.energy) for layer in layers]
    rows.append(row(last.key * 1.01, last, last.energy * 1.01))
    header = (
        "NominalEnergy\tMeanEnergy\tEnergySpread\tProtonsMU\tWeight1\tSpotSize1x\tDivergence1x"
        "\tCorrelation1x\tSpotSize1y\tDivergence1y\tCorrelation1y\tWeight2\tSpotSize2x"
        "\tDivergence2x\tCorrelation2x\tSpotSize2y\tDivergence2y\tCorrelation2y"
    )
    lines = [
        "--UPenn beam model (double gaussian)--",  # MCsquare selects its reader on this line
        "# written by cyclotron for one editor beam", "",
        "Nozzle exit to Isocenter distance", f"{geometry.nozzle_mm:.6f}", "",
        "SMX to Isocenter distance", f"{geometry.sm_mm[0]:.1f}", "",
        "SMY to Isocenter distance", f"{geometry.sm_mm[1]:.1f}", "",
        "Beam parameters", f"{len(rows)} energies", "", header, *rows,
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
