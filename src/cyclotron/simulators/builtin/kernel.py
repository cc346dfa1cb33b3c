"""The numba kernel of the ``builtin`` engine: proton histories through a voxel grid.

A history is a primary and the secondary protons of its nuclear events, kept on a small
stack. Each step is limited by a fraction of the residual range (between a minimum and a
maximum length), by the next nuclear event (nonelastic, or elastic on a nucleus or on
hydrogen: events.py, nuclear.py) and by the next change of zone along the voxel grid
(voxels of the same zone are crossed without stopping); it loses the CSDA energy of its
length plus Bohr straggling, then turns by the scattering power of its mid energy (with the
correlated lateral shift where that stays in the zone). Every step writes one record at a
point uniform along it, with the stopping power at its mid energy as the LET its deposit and
its length weigh (on the step that stops the particle, whose LET rises tenfold along it, the
dose- and the track-averaged stopping power instead); a step that ends in a nuclear event
writes a second, of no length, with the event's local energy at the event's point. The
kernel stops when the record buffer is full, even within a history: the particle in flight
goes back on the stack and the next call carries on from there. Primaries start as
source.py draws them; the particle layout and random numbers are in particles.py.
"""

from __future__ import annotations

import math

import numpy as np

from cyclotron.simulators.builtin.events import elastic as _elastic
from cyclotron.simulators.builtin.events import nonelastic as _nonelastic
from cyclotron.simulators.builtin.particles import (
    BEAM,
    BIRTH,
    BLACK_HOLE,
    DEPOSITED,
    ENERGY,
    ESCAPED,
    FIRST,
    FLOAT_ROWS,
    GENERATION,
    INT_ROWS,
    MATTER,
    MFP,
    NEUTRAL,
    NUDGE,
    SHAPE_CIRCLE,
    SHAPE_GAUSSIAN,
    SHAPE_SQUARE,
    STACK_DEPTH,
    STACK_SIZE,
    STARTED,
    STATE_SIZE,
    UX,
    UY,
    UZ,
    VACUUM,
    Arrays,
    X,
    Y,
    Z,
)
from cyclotron.simulators.builtin.particles import compiled as _compiled
from cyclotron.simulators.builtin.particles import copy_state as _copy_state
from cyclotron.simulators.builtin.particles import frame as _frame
from cyclotron.simulators.builtin.particles import gauss as _gauss
from cyclotron.simulators.builtin.particles import inlined as _inlined
from cyclotron.simulators.builtin.particles import move as _move
from cyclotron.simulators.builtin.particles import push as _push
from cyclotron.simulators.builtin.particles import uniform as _uniform
from cyclotron.simulators.builtin.physics import bohr_variance, scattering_power
from cyclotron.simulators.builtin.source import start_primary as _start_primary

__all__ = [
    "BEAM", "BLACK_HOLE", "DEPOSITED", "ESCAPED", "FLOAT_ROWS", "INT_ROWS", "MATTER",
    "NEUTRAL", "SHAPE_CIRCLE", "SHAPE_GAUSSIAN", "SHAPE_SQUARE", "STACK_SIZE", "STATE_SIZE",
    "VACUUM", "Arrays", "run_batch",
]  # fmt: skip


@_compiled
def _lookup(table: np.ndarray, m: int, start: float, inverse_step: float, log_x: float) -> float:
    """Linear interpolation in row ``m`` of a table uniform in log(x)."""
    t = (log_x - start) * inverse_step
    n = table.shape[1]
    if t <= 0.0:
        return float(table[m, 0])
    if t >= n - 1:
        return float(table[m, n - 1])
    i = int(t)
    f = t - i
    return float(table[m, i] * (1.0 - f) + table[m, i + 1] * f)


@_inlined
def _energy_at_range(tables: Arrays, m: int, mass_range: float) -> float:
    """Kinetic energy (MeV) whose CSDA range in medium ``m`` is ``mass_range`` g/cm²."""
    energy_of_range, range_start, inverse_step = tables[3], tables[4], tables[5]
    if mass_range <= 0.0:
        return 0.0
    if math.log(mass_range) < range_start[m]:
        return float(energy_of_range[m, 0]) * mass_range / math.exp(range_start[m])
    return _lookup(energy_of_range, m, range_start[m], inverse_step[m], math.log(mass_range))


@_inlined
def _voxel(grid: Arrays, pos: np.ndarray) -> tuple[int, int, int, int]:
    """Indices and zone of the voxel holding ``pos`` (zone -1 outside the grid)."""
    zones, origin, spacing = grid[0], grid[1], grid[2]
    i = int(math.floor((pos[0] - origin[0]) / spacing[0]))
    j = int(math.floor((pos[1] - origin[1]) / spacing[1]))
    k = int(math.floor((pos[2] - origin[2]) / spacing[2]))
    nx, ny, nz = zones.shape
    if i < 0 or j < 0 or k < 0 or i >= nx or j >= ny or k >= nz:
        return i, j, k, -1
    return i, j, k, int(zones[i, j, k])


@_compiled
def _axis_crossing(u: float, position: float, low: float, width: float) -> tuple[float, float, int]:
    """Distance to the next voxel face along one axis, distance between faces, index step."""
    if u > 0.0:
        return (low + width - position) / u, width / u, 1
    if u < 0.0:
        return (low - position) / u, -width / u, -1
    return np.inf, np.inf, 0


@_inlined
def _zone_change(grid: Arrays, p: np.ndarray, ijk: Arrays, zone: int, limit: float) -> float:
    """Distance along the direction to the first voxel of another zone, or ``limit``."""
    zones, origin, spacing = grid[0], grid[1], grid[2]
    i, j, k = ijk
    nx, ny, nz = zones.shape
    tx, dx, sx = _axis_crossing(p[UX], p[X], origin[0] + i * spacing[0], spacing[0])
    ty, dy, sy = _axis_crossing(p[UY], p[Y], origin[1] + j * spacing[1], spacing[1])
    tz, dz, sz = _axis_crossing(p[UZ], p[Z], origin[2] + k * spacing[2], spacing[2])
    while True:
        if tx <= ty and tx <= tz:
            t, i, tx = tx, i + sx, tx + dx
        elif ty <= tz:
            t, j, ty = ty, j + sy, ty + dy
        else:
            t, k, tz = tz, k + sz, tz + dz
        t = max(t, 0.0)
        if t >= limit:
            return limit
        if i < 0 or j < 0 or k < 0 or i >= nx or j >= ny or k >= nz:
            return t
        if zones[i, j, k] != zone:
            return t


@_inlined
def _scatter(
    grid: Arrays, p: np.ndarray, zone: int, theta0: float, length: float, shift: bool,
    rng: np.ndarray,
) -> None:  # fmt: skip
    """Multiple scattering at the end of a step: new direction and correlated lateral shift.

    Per plane, angle θ0·g2 and shift length·θ0·(g1/√12 + g2/2) (Fermi–Eyges moments of a
    step); the shift is dropped when it would leave the zone of the step.
    """
    g1, g2, g3, g4 = _gauss(rng), _gauss(rng), _gauss(rng), _gauss(rng)
    ax, ay, az, bx, by, bz = _frame(p)
    if shift:
        dx = length * theta0 * (g1 * 0.28867513459481287 + g2 * 0.5)
        dy = length * theta0 * (g3 * 0.28867513459481287 + g4 * 0.5)
        x, y, z = p[X], p[Y], p[Z]
        p[X] += dx * ax + dy * bx
        p[Y] += dx * ay + dy * by
        p[Z] += dx * az + dy * bz
        if _voxel(grid, p)[3] != zone:
            p[X], p[Y], p[Z] = x, y, z
    tx, ty = theta0 * g2, theta0 * g4
    nx = p[UX] + tx * ax + ty * bx
    ny = p[UY] + tx * ay + ty * by
    nz = p[UZ] + tx * az + ty * bz
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    p[UX], p[UY], p[UZ] = nx / norm, ny / norm, nz / norm


@_inlined
def _cross_sections(tables: Arrays, m: int, log_e: float) -> tuple[float, float, float, float]:
    """Nonelastic, nucleus-elastic and p + p elastic cross-sections per mass (cm²/g) of
    medium ``m``, and their sum."""
    nonelastic = _lookup(tables[2], m, tables[6], tables[7], log_e)
    elastic = _lookup(tables[9], m, tables[6], tables[7], log_e)
    proton = _lookup(tables[10], m, tables[6], tables[7], log_e)
    return nonelastic, elastic, proton, nonelastic + elastic + proton


@_inlined
def _step_length(
    tables: Arrays, steps: np.ndarray, p: np.ndarray, m: int, density: float,
    rng: np.ndarray,
) -> tuple[float, float, float, bool, bool]:  # fmt: skip
    """Length, range (g/cm²) and 1/λ (1/cm) of the next step, and whether it ends the range
    or at a nonelastic event (before looking at zone boundaries).

    A particle's first step in a zone is a uniform fraction of the usual length, so that the
    steps of different histories do not begin at the same depths: a step's deposit is scored
    at a point uniform along it while the stopping power rises along it, which, with every
    history's steps in phase, drew a saw-tooth with the step length's period.
    """
    log_e = math.log(p[ENERGY])
    mass_range = _lookup(tables[1], m, tables[6], tables[7], log_e)
    residual = mass_range / density
    length = min(max(steps[0] * residual, steps[1]), steps[2])
    if p[FIRST] != 0.0:
        length *= _uniform(rng)
        p[FIRST] = 0.0
    final = length >= residual
    if final:
        length = residual
    sigma = _cross_sections(tables, m, log_e)[3] * density
    if p[MFP] < length * sigma:
        return p[MFP] / sigma, mass_range, sigma, False, True
    return length, mass_range, sigma, final, False


@_inlined
def _record(
    floats: np.ndarray, ints: np.ndarray, n: int, p: np.ndarray, length: float,
    values: tuple[float, float, float, float], zone: int, rng: np.ndarray,
) -> None:  # fmt: skip
    """Write step ``n``: a point uniform along it, then (edep, energy, let, track_let), zone,
    generation."""
    t = length * _uniform(rng)
    floats[0, n] = p[X] + t * p[UX]
    floats[1, n] = p[Y] + t * p[UY]
    floats[2, n] = p[Z] + t * p[UZ]
    floats[3, n] = values[0]
    floats[4, n] = length
    floats[5, n] = values[1]
    floats[6, n] = values[2]
    floats[7, n] = values[3]
    ints[0, n] = zone
    ints[1, n] = int(p[GENERATION])


@_inlined
def _deposit(
    floats: np.ndarray, ints: np.ndarray, n: int, p: np.ndarray, edep: float,
    values: tuple[float, float], zone: int,
) -> None:  # fmt: skip
    """Write record ``n``: ``edep`` deposited at the point of ``p``, no track length."""
    floats[0, n] = p[X]
    floats[1, n] = p[Y]
    floats[2, n] = p[Z]
    floats[3, n] = edep
    floats[4, n] = 0.0
    floats[5, n] = values[0]
    floats[6, n] = values[1]
    floats[7, n] = values[1]
    ints[0, n] = zone
    ints[1, n] = int(p[GENERATION])


@_inlined
def _final_let(tables: Arrays, m: int, density: float, energy: float) -> float:
    """Dose-averaged LET (keV/µm) of a proton that stops in one step from ``energy``.

    Σ S·dE / Σ dE over its whole remaining energy, ∫₀ᴱ S dE' / E from the tabulated integral:
    the stopping power at one energy of such a step, whose LET rises tenfold along it, gave
    the Bragg peak's dose about two thirds of its dose-averaged LET.
    """
    log_e = math.log(energy)
    integral = _lookup(tables[8], m, tables[6], tables[7], log_e)
    if log_e < tables[6]:  # below the grid, S ∝ E^-0.5: the integral goes as √E
        integral *= math.sqrt(math.exp(log_e - tables[6]))
    return 0.1 * density * integral / energy


@_inlined
def _loss(
    media: Arrays, tables: Arrays, p: np.ndarray, m: int, lengths: tuple[float, float],
    final: bool, rng: np.ndarray,
) -> tuple[float, float, float, float]:  # fmt: skip
    """Energy lost on a step of ``lengths`` (cm, and the range before it in g/cm²), the mid
    energy, and the LET its deposit and its length weigh.

    The stopping power at the recorded energy (StepBatch's contract), not the step's mean
    loss per length, which departs from it by a percent on centimetre steps; but a step that
    stops the proton takes its averages over the whole of its rising LET.
    """
    length, mass_range = lengths
    density = media[1][m]
    loss = p[ENERGY]
    if final:
        e_mid = _energy_at_range(tables, m, 0.5 * mass_range)
    else:
        loss -= _energy_at_range(tables, m, mass_range - length * density)
        e_mid = p[ENERGY] - 0.5 * loss
    let = 0.1 * density * _lookup(tables[0], m, tables[6], tables[7], math.log(e_mid))
    track_let = let
    if final:
        let, track_let = _final_let(tables, m, density, loss), 0.1 * loss / length
    else:
        spread = math.sqrt(bohr_variance(media[2][m], density, e_mid, length))
        loss = min(max(loss + spread * _gauss(rng), 0.0), p[ENERGY])
    return loss, e_mid, let, track_let


@_inlined
def _nuclear_event(
    p: np.ndarray, pick: float, kinds: tuple[float, float, float, float], stack: np.ndarray,
    counters: np.ndarray, rng: np.ndarray, ledger: np.ndarray,
) -> tuple[float, bool]:  # fmt: skip
    """The event ``pick`` (uniform in the total cross-section ``kinds[3]``) chooses: a
    nonelastic one ends the proton, an elastic one turns it. Returns the energy deposited
    at the event and whether the proton goes on."""
    if pick < kinds[0]:
        local, neutral = _nonelastic(p, stack, counters, rng)
        ledger[NEUTRAL] += neutral
        return local, False
    local = _elastic(p, pick >= kinds[0] + kinds[1], stack, counters, rng)
    return local, p[ENERGY] > 0.0


@_inlined
def _step(
    grid: Arrays, media: Arrays, tables: Arrays, steps: np.ndarray, p: np.ndarray,
    rng: np.ndarray, stack: np.ndarray, counters: np.ndarray, ledger: np.ndarray,
    floats: np.ndarray, ints: np.ndarray, n: int,
) -> tuple[int, bool]:  # fmt: skip
    """One step of particle ``p``; returns the records written so far and whether it lives."""
    i, j, k, zone = _voxel(grid, p)
    m = grid[3][zone] if zone >= 0 else 0
    if zone < 0 or media[0][m] == BLACK_HOLE:
        ledger[ESCAPED] += p[ENERGY]
        return n, False
    if media[0][m] == VACUUM:
        _move(p, _zone_change(grid, p, (i, j, k), zone, np.inf) + NUDGE)
        p[FIRST] = 1.0
        return n, True
    density = media[1][m]
    length, mass_range, sigma, final, nuclear = _step_length(tables, steps, p, m, density, rng)
    boundary = _zone_change(grid, p, (i, j, k), zone, length)
    crossing = boundary < length
    if crossing:
        length, final, nuclear = boundary, False, False
    loss, e_mid, let, track_let = _loss(media, tables, p, m, (length, mass_range), final, rng)
    _record(floats, ints, n, p, length, (loss, e_mid, let, track_let), zone, rng)
    ledger[DEPOSITED] += loss
    p[MFP] = 0.0 if nuclear else p[MFP] - length * sigma
    _move(p, length + (NUDGE if crossing else 0.0))
    if crossing:
        p[FIRST] = 1.0
    p[ENERGY] -= loss
    if p[ENERGY] <= 0.0:
        return n + 1, False
    theta0 = math.sqrt(scattering_power(e_mid, p[BIRTH], media[3][m]) * length)
    if nuclear:
        # The event's local energy goes where the event is, in a record of its own: scored
        # with the step's uniform point, it repeated the step length as a saw-tooth in depth.
        # Which event it is goes by the cross-sections at the step's start.
        kinds = _cross_sections(tables, m, math.log(p[ENERGY] + loss))
        pick = _uniform(rng) * kinds[3]
        if pick >= kinds[0]:  # elastic: the step's multiple scattering comes first
            _scatter(grid, p, zone, theta0, length, False, rng)
        local, alive = _nuclear_event(p, pick, kinds, stack, counters, rng, ledger)
        _deposit(floats, ints, n + 1, p, local, (e_mid, let), zone)
        ledger[DEPOSITED] += local
        return n + 2, alive
    _scatter(grid, p, zone, theta0, length, not crossing, rng)
    return n + 1, True


@_compiled
def run_batch(
    grid: Arrays, media: Arrays, tables: Arrays, steps: np.ndarray, beam: np.ndarray,
    spots: np.ndarray, primaries: int, rng: np.ndarray, stack: np.ndarray, counters: np.ndarray,
    ledger: np.ndarray, floats: np.ndarray, ints: np.ndarray, p: np.ndarray,
) -> tuple[int, int]:  # fmt: skip
    """Transport until ``primaries`` have started and finished or the buffers are full.

    ``p`` is room for the particle in flight (``STATE_SIZE``). Returns the records written
    to ``floats``/``ints`` and the histories completed here.
    """
    n = 0
    completed = 0
    capacity = floats.shape[1] - 1  # a step writes up to two records
    while True:
        if counters[STACK_DEPTH] == 0:
            if counters[STARTED] >= primaries:
                return n, completed
            counters[STARTED] += 1
            _start_primary(grid, beam, spots, rng, stack, counters, ledger)
            if counters[STACK_DEPTH] == 0:
                completed += 1
            continue
        if n >= capacity:
            return n, completed
        counters[STACK_DEPTH] -= 1
        _copy_state(p, stack[counters[STACK_DEPTH]])
        alive = True
        while alive:
            if n >= capacity:
                _push(stack, counters, p)
                return n, completed
            n, alive = _step(
                grid, media, tables, steps, p, rng, stack, counters, ledger, floats, ints, n
            )
        if counters[STACK_DEPTH] == 0:
            completed += 1
