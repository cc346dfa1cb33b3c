"""Proton transport of the ``builtin`` engine: a ``VoxelGrid`` and a ``BeamSpec`` in,
``StepBatch`` records out (the kernel is in kernel.py, the physics in physics.py).

Step sizes: at most ``STEP_FRACTION`` of the residual CSDA range, never below ``MIN_STEP``
nor above ``MAX_STEP`` (cm), and never across a change of zone; a particle whose residual
range is below ``MIN_STEP`` stops in one last step. That is about 63 steps per 150 MeV
primary in water. Halving every limit (twice the steps) moves R80 by less than 0.1 % of the
CSDA range from 70 to 200 MeV and the lateral spread at mid-range by about 1 %, both well
inside the tolerances of tests/integration/test_builtin_transport.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cyclotron.simulators.builtin import kernel
from cyclotron.simulators.builtin.media import SYMBOLS, material
from cyclotron.simulators.builtin.nuclear import elastic_cross_sections
from cyclotron.simulators.builtin.physics import energy_grid, medium_tables
from cyclotron.simulators.editor.records import (
    FLAT_CIRCLE,
    FLAT_SQUARE,
    GAUSSIAN,
    BeamSpec,
    FloatArray,
    IntArray,
    Medium,
    Spot,
    StepBatch,
    VoxelGrid,
    beam_axes,
)

STEP_FRACTION = 0.16  # of the residual range; the loss comes from the range table
MIN_STEP = 0.03  # cm
MAX_STEP = 1.0  # cm
BATCH_RECORDS = 1 << 18  # records handed to the sink at once (about 12 MB)
PROGRESS_INTERVAL = 1.0  # seconds
PROGRESS_STEPS = 50  # progress is reported at least every 1/50 of the primaries (2 %)
_KINDS = {"matter": kernel.MATTER, "vacuum": kernel.VACUUM, "black_hole": kernel.BLACK_HOLE}
_MASK = (1 << 64) - 1


@dataclass
class EnergyBalance:
    """Where the beam's kinetic energy went in one ``simulate`` call (MeV, summed).

    ``escaped`` is what left the world or entered a black hole; ``neutral`` what nonelastic
    events gave to neutrons and gammas (not deposited anywhere).
    """

    beam: float = 0.0
    deposited: float = 0.0
    escaped: float = 0.0
    neutral: float = 0.0

    def add(self, ledger: FloatArray) -> None:
        """Add the kernel's ledger (see kernel.py) to these sums."""
        self.beam += float(ledger[kernel.BEAM])
        self.deposited += float(ledger[kernel.DEPOSITED])
        self.escaped += float(ledger[kernel.ESCAPED])
        self.neutral += float(ledger[kernel.NEUTRAL])


def _rng_state(seed: int) -> np.ndarray:
    """xoshiro256+ state from ``seed`` by SplitMix64, as its authors recommend."""
    state = []
    x = seed & _MASK
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & _MASK
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        state.append(z ^ (z >> 31))
    return np.array(state, dtype=np.uint64)


_SHAPES = {
    GAUSSIAN: kernel.SHAPE_GAUSSIAN,
    FLAT_SQUARE: kernel.SHAPE_SQUARE,
    FLAT_CIRCLE: kernel.SHAPE_CIRCLE,
}


def beam_arrays(beam: BeamSpec) -> tuple[FloatArray, FloatArray]:
    """The beam as the kernel reads it: position, direction, x and y axes, divergences,
    shape and SADs; and one row per spot (cumulative weight, energy and its sigma, centre,
    widths). Raises ValueError for anything but protons."""
    if (beam.particle_z, beam.particle_a) != (1, 1):
        name = SYMBOLS[beam.particle_z - 1] if 1 <= beam.particle_z <= len(SYMBOLS) else "?"
        raise ValueError(
            f"the builtin engine transports protons only, not {beam.particle_a}{name} "
            f"(Z={beam.particle_z}, A={beam.particle_a})"
        )
    if beam.shape not in _SHAPES:
        raise ValueError(f"beam shape {beam.shape!r} (known: {', '.join(_SHAPES)})")
    direction = np.asarray(beam.direction, dtype=float)
    a, b = beam_axes(direction)
    geometry = np.concatenate(
        [
            np.asarray(beam.position, dtype=float),
            direction / np.linalg.norm(direction),
            a,
            b,
            [beam.divergence_x, beam.divergence_y, _SHAPES[beam.shape], beam.sad_x, beam.sad_y],
        ]
    )
    spots = beam.spots or (
        Spot(beam.energy, beam.energy_sigma, 0.0, 0.0, beam.sigma_x, beam.sigma_y, 1.0),
    )
    rows = np.array(
        [[s.weight, s.energy, s.energy_sigma, s.x, s.y, s.sigma_x, s.sigma_y] for s in spots]
    )
    if np.any(rows[:, 0] < 0) or not rows[:, 0].sum() > 0:
        raise ValueError("spot weights must not be negative, and one must be positive")
    rows[:, 0] = np.cumsum(rows[:, 0])
    return geometry, rows


def kernel_media(media: tuple[Medium, ...]) -> tuple[kernel.Arrays, kernel.Arrays]:
    """Per-medium constants and tables (see kernel.py) for the media of a grid."""
    grid = energy_grid()
    n = len(media)
    kinds = np.zeros(n, dtype=np.int64)
    constants = np.zeros((3, n))  # density, Z/A, density / X_S
    stopping, csda, nuclear, energy_of_range, integral, elastic, proton_elastic = (
        np.zeros((n, grid.size)) for _ in range(7)
    )
    range_start, inverse_step = np.zeros(n), np.ones(n)
    for m, medium in enumerate(media):
        mat = material(medium.icru)
        kinds[m] = _KINDS[mat.kind]
        if mat.kind != "matter":
            continue
        constants[:, m] = (medium.density, mat.z_over_a, medium.density / mat.scattering_length)
        tables = medium_tables(mat, medium.density)
        stopping[m], csda[m], nuclear[m] = tables.stopping, tables.csda, tables.nuclear
        integral[m] = tables.stopping_integral
        elastic[m], proton_elastic[m] = elastic_cross_sections(mat, grid)
        log_range = np.log(tables.csda)
        nodes = np.linspace(log_range[0], log_range[-1], grid.size)
        energy_of_range[m] = np.exp(np.interp(nodes, log_range, np.log(grid)))
        range_start[m], inverse_step[m] = nodes[0], 1.0 / (nodes[1] - nodes[0])
    log_grid = np.log(grid)
    tables_tuple = (
        stopping, csda, nuclear, energy_of_range, range_start, inverse_step,
        float(log_grid[0]), float(1.0 / (log_grid[1] - log_grid[0])), integral, elastic,
        proton_elastic,
    )  # fmt: skip
    return (kinds, constants[0], constants[1], constants[2]), tables_tuple


def kernel_grid(grid: VoxelGrid) -> kernel.Arrays:
    """The grid as the kernel reads it: zones, origin, spacing, medium of each zone."""
    return (
        np.ascontiguousarray(grid.zones, dtype=np.int32),
        np.asarray(grid.origin, dtype=float),
        np.asarray(grid.spacing, dtype=float),
        np.asarray(grid.zone_media, dtype=np.int64),
    )


def _batch(floats: FloatArray, ints: IntArray, n: int) -> StepBatch:
    x, y, z, edep, length, energy, let, track_let = (
        floats[r, :n].copy() for r in range(kernel.FLOAT_ROWS)
    )
    ones = np.ones(n, dtype=np.int32)
    return StepBatch(
        x, y, z, edep, length, energy, let, ints[0, :n].copy(), ints[1, :n].copy(), ones,
        ones.copy(), track_let,
    )  # fmt: skip


def simulate(
    grid: VoxelGrid,
    beam: BeamSpec,
    primaries: int,
    seed: int,
    sink: Callable[[StepBatch], None],
    progress: Callable[[int], None] | None = None,
    *,
    balance: EnergyBalance | None = None,
) -> int:
    """Transport ``primaries`` protons of ``beam`` through ``grid``; returns how many ran.

    Steps go to ``sink`` in batches of at most ``BATCH_RECORDS``; ``progress`` gets the
    primaries completed each time another 2 % of them is done, and at least once a second
    while a batch of records fills. The same seed gives the same records, however the work
    is cut.
    """
    beam_values, spots = beam_arrays(beam)
    media, tables = kernel_media(grid.media)
    grid_arrays = kernel_grid(grid)
    steps = np.array([STEP_FRACTION, MIN_STEP, MAX_STEP])
    rng = _rng_state(seed)
    stack = np.zeros((kernel.STACK_SIZE, kernel.STATE_SIZE))
    particle = np.zeros(kernel.STATE_SIZE)
    counters = np.zeros(2, dtype=np.int64)
    ledger = np.zeros(4)
    floats = np.empty((kernel.FLOAT_ROWS, BATCH_RECORDS))
    ints = np.empty((kernel.INT_ROWS, BATCH_RECORDS), dtype=np.int32)
    done = 0
    last = time.monotonic()
    # The kernel returns when the records fill its buffer or when the histories it may start
    # (up to ``target``) are done: raising the target by 2 % at a time cuts the run there.
    step = max(1, -(-primaries // PROGRESS_STEPS))
    reported = 0
    while done < primaries:
        target = min(primaries, done + step)
        n, completed = kernel.run_batch(
            grid_arrays, media, tables, steps, beam_values, spots, target,
            rng, stack, counters, ledger, floats, ints, particle,
        )  # fmt: skip
        done += completed
        if n:
            sink(_batch(floats, ints, n))
        now = time.monotonic()
        if progress is not None and (
            done >= reported + step or now - last >= PROGRESS_INTERVAL or done >= primaries
        ):
            progress(done)
            reported, last = done, now
    if balance is not None:
        balance.add(ledger)
    return done
