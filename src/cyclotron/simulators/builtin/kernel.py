"""The numba kernel of the ``builtin`` engine: proton histories through a voxel grid.

A history is a primary and the secondary protons its nonelastic events emit, kept on a
small stack. Each step is limited by a fraction of the residual range (between a minimum
and a maximum length), by the next nonelastic event and by the next change of zone along
the voxel grid (voxels of the same zone are crossed without stopping); it loses the CSDA
energy of its length plus Bohr straggling, then turns by the scattering power of its mid
energy (with the correlated lateral shift where that stays in the zone). Every step writes
one record. The kernel stops when the record buffer is full, even within a history: the
particle in flight goes back on the stack and the next call carries on from there.

The random numbers are xoshiro256+ with the state held by the caller, so a run depends on
its seed alone.

Every function is compiled without numba's reference counting (``_nrt=False``): nothing is
allocated here, and the atomic reference counts of the arrays passed around took about a
third of the time (perf, numba 0.68).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any, TypeVar, cast

import numpy as np
from numba import njit

from cyclotron.simulators.builtin.physics import (
    NUCLEAR_LOCAL_FRACTION,
    NUCLEAR_SECONDARY_EXPONENT,
    bohr_variance,
    scattering_power,
)

# Particle state on the stack: position, direction, energy, energy at birth, mean free paths
# left to the next nonelastic event, generation.
X, Y, Z, UX, UY, UZ, ENERGY, BIRTH, MFP, GENERATION = range(10)
STATE_SIZE = 10
# Record rows: floats (x, y, z, edep, length, energy, let) and ints (zone, generation).
FLOAT_ROWS = 7
INT_ROWS = 2
# Ledger entries (MeV): deposited, left the world or absorbed by a black hole, carried off
# by neutral secondaries of nonelastic events, and the kinetic energy of the beam.
DEPOSITED, ESCAPED, NEUTRAL, BEAM = range(4)
# Counters kept between calls: stack depth, primaries started.
STACK_DEPTH, STARTED = range(2)
MATTER, VACUUM, BLACK_HOLE = range(3)
NUDGE = 1e-7  # cm: how far past a zone boundary a crossing step ends
STACK_SIZE = 64

# Quantiles of the standard normal distribution at (i + ½)/N: Gaussian numbers come from one
# uniform by linear interpolation in it (tails cut at ±3.8σ, which changes σ by < 0.1 %).
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 8192) for i in range(8192)])

F = TypeVar("F", bound=Callable[..., Any])


def _compiled(function: F) -> F:
    """Compile with numba, cached on disk, without reference counting (see above)."""
    return cast(F, njit(_nrt=False, cache=True)(function))  # type: ignore[call-overload]


def _inlined(function: F) -> F:
    """Like ``_compiled``, and inlined by numba into its callers (the per-step work)."""
    compiled = njit(_nrt=False, cache=True, inline="always")  # type: ignore[call-overload]
    return cast(F, compiled(function))


#: The grid, media and tables as the kernel takes them (tuples of arrays, see transport.py).
Arrays = tuple[Any, ...]


@_compiled
def _uniform(rng: np.ndarray) -> float:
    """A uniform double in (0, 1) from xoshiro256+."""
    result = rng[0] + rng[3]
    t = rng[1] << np.uint64(17)
    rng[2] ^= rng[0]
    rng[3] ^= rng[1]
    rng[1] ^= rng[2]
    rng[0] ^= rng[3]
    rng[2] ^= t
    rng[3] = (rng[3] << np.uint64(45)) | (rng[3] >> np.uint64(19))
    return (float(result >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@_compiled
def _gauss(rng: np.ndarray) -> float:
    """A standard normal number (inverse of the tabulated distribution function)."""
    x = _uniform(rng) * _NORMAL_QUANTILES.size - 0.5
    i = min(max(int(x), 0), _NORMAL_QUANTILES.size - 2)
    f = min(max(x - i, 0.0), 1.0)
    return float(_NORMAL_QUANTILES[i] * (1.0 - f) + _NORMAL_QUANTILES[i + 1] * f)


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


@_compiled
def _move(p: np.ndarray, distance: float) -> None:
    """Move ``p`` by ``distance`` along its direction."""
    p[X] += distance * p[UX]
    p[Y] += distance * p[UY]
    p[Z] += distance * p[UZ]


@_compiled
def _frame(p: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """Two unit vectors perpendicular to the direction of ``p`` and to each other."""
    ux, uy, uz = p[UX], p[UY], p[UZ]
    if abs(uz) < 0.9:
        norm = math.sqrt(ux * ux + uy * uy)
        ax, ay, az = -uy / norm, ux / norm, 0.0
    else:
        norm = math.sqrt(uy * uy + uz * uz)
        ax, ay, az = 0.0, -uz / norm, uy / norm
    return ax, ay, az, uy * az - uz * ay, uz * ax - ux * az, ux * ay - uy * ax


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


@_compiled
def _copy_state(destination: np.ndarray, source: np.ndarray) -> None:
    """Copy one particle state (element by element: no temporary array)."""
    for a in range(STATE_SIZE):
        destination[a] = source[a]


@_compiled
def _push(stack: np.ndarray, counters: np.ndarray, p: np.ndarray) -> bool:
    """Put a particle on the stack; False when the stack is full."""
    depth = counters[STACK_DEPTH]
    if depth >= stack.shape[0]:
        return False
    _copy_state(stack[depth], p)
    counters[STACK_DEPTH] = depth + 1
    return True


@_compiled
def _nonelastic(
    p: np.ndarray, stack: np.ndarray, counters: np.ndarray, rng: np.ndarray
) -> tuple[float, float]:
    """A nonelastic event ends the proton of ``p``; returns the energy deposited on the spot
    and the energy that leaves as neutral particles.

    One secondary proton goes on the stack (see physics.NUCLEAR_*); what neither it nor the
    local deposit takes leaves as neutral particles.
    """
    energy = p[ENERGY]
    local = NUCLEAR_LOCAL_FRACTION * energy
    secondary = (energy - local) * _uniform(rng) ** NUCLEAR_SECONDARY_EXPONENT
    cos_t = math.sqrt(secondary / energy)
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    phi = 2.0 * math.pi * _uniform(rng)
    ax, ay, az, bx, by, bz = _frame(p)
    c, s = sin_t * math.cos(phi), sin_t * math.sin(phi)
    neutral = energy - local - secondary
    depth = counters[STACK_DEPTH]
    if depth >= stack.shape[0]:
        return local + secondary, neutral
    q = stack[depth]
    _copy_state(q, p)
    q[UX] = cos_t * p[UX] + c * ax + s * bx
    q[UY] = cos_t * p[UY] + c * ay + s * by
    q[UZ] = cos_t * p[UZ] + c * az + s * bz
    q[ENERGY] = secondary
    q[BIRTH] = secondary
    q[MFP] = -math.log(_uniform(rng))
    q[GENERATION] = p[GENERATION] + 1.0
    counters[STACK_DEPTH] = depth + 1
    return local, neutral


@_inlined
def _step_length(
    tables: Arrays, steps: np.ndarray, p: np.ndarray, m: int, density: float
) -> tuple[float, float, float, bool, bool]:
    """Length, range (g/cm²) and 1/λ (1/cm) of the next step, and whether it ends the range
    or at a nonelastic event (before looking at zone boundaries)."""
    log_e = math.log(p[ENERGY])
    mass_range = _lookup(tables[1], m, tables[6], tables[7], log_e)
    residual = mass_range / density
    length = min(max(steps[0] * residual, steps[1]), steps[2])
    final = length >= residual
    if final:
        length = residual
    sigma = _lookup(tables[2], m, tables[6], tables[7], log_e) * density
    if p[MFP] < length * sigma:
        return p[MFP] / sigma, mass_range, sigma, False, True
    return length, mass_range, sigma, final, False


@_inlined
def _record(
    floats: np.ndarray, ints: np.ndarray, n: int, p: np.ndarray, length: float,
    values: tuple[float, float, float], zone: int, rng: np.ndarray,
) -> None:  # fmt: skip
    """Write step ``n``: a point uniform along it, then (edep, energy, let), zone, generation."""
    t = length * _uniform(rng)
    floats[0, n] = p[X] + t * p[UX]
    floats[1, n] = p[Y] + t * p[UY]
    floats[2, n] = p[Z] + t * p[UZ]
    floats[3, n] = values[0]
    floats[4, n] = length
    floats[5, n] = values[1]
    floats[6, n] = values[2]
    ints[0, n] = zone
    ints[1, n] = int(p[GENERATION])


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
        return n, True
    density = media[1][m]
    length, mass_range, sigma, final, nuclear = _step_length(tables, steps, p, m, density)
    boundary = _zone_change(grid, p, (i, j, k), zone, length)
    crossing = boundary < length
    if crossing:
        length, final, nuclear = boundary, False, False
    loss = p[ENERGY]
    if final:
        e_mid = _energy_at_range(tables, m, 0.5 * mass_range)
    else:
        loss -= _energy_at_range(tables, m, mass_range - length * density)
        e_mid = p[ENERGY] - 0.5 * loss
    # The stopping power at the recorded energy (StepBatch's contract), not the step's mean
    # loss per length, which departs from it by a percent on centimetre steps.
    let = 0.1 * density * _lookup(tables[0], m, tables[6], tables[7], math.log(e_mid))
    if not final:
        spread = math.sqrt(bohr_variance(media[2][m], density, e_mid, length))
        loss = min(max(loss + spread * _gauss(rng), 0.0), p[ENERGY])
    _record(floats, ints, n, p, length, (loss, e_mid, let), zone, rng)
    ledger[DEPOSITED] += loss
    p[MFP] = 0.0 if nuclear else p[MFP] - length * sigma
    _move(p, length + (NUDGE if crossing else 0.0))
    p[ENERGY] -= loss
    if p[ENERGY] <= 0.0:
        return n + 1, False
    if nuclear:
        local, neutral = _nonelastic(p, stack, counters, rng)
        floats[3, n] += local
        ledger[DEPOSITED] += local
        ledger[NEUTRAL] += neutral
        return n + 1, False
    theta0 = math.sqrt(scattering_power(e_mid, p[BIRTH], media[3][m]) * length)
    _scatter(grid, p, zone, theta0, length, not crossing, rng)
    return n + 1, True


@_compiled
def _enter(grid: Arrays, p: np.ndarray) -> bool:
    """Move ``p`` along its direction into the grid's box; False when it never gets there."""
    zones, origin, spacing = grid[0], grid[1], grid[2]
    t_in, t_out = 0.0, np.inf
    for a in range(3):
        low, high = origin[a], origin[a] + zones.shape[a] * spacing[a]
        u = p[UX + a]
        if u == 0.0:
            if p[a] < low or p[a] >= high:
                return False
            continue
        t1, t2 = (low - p[a]) / u, (high - p[a]) / u
        t_in = max(t_in, min(t1, t2))
        t_out = min(t_out, max(t1, t2))
    if t_in >= t_out:
        return False
    if t_in > 0.0:
        _move(p, t_in + NUDGE)
    return True


@_compiled
def _start_primary(
    grid: Arrays, beam: np.ndarray, rng: np.ndarray, stack: np.ndarray,
    counters: np.ndarray, ledger: np.ndarray,
) -> None:  # fmt: skip
    """Sample a primary from the beam (see transport.beam_array) onto the (empty) stack."""
    p = stack[0]
    p[GENERATION] = 0.0
    g1, g2, g3, g4, g5 = _gauss(rng), _gauss(rng), _gauss(rng), _gauss(rng), _gauss(rng)
    energy = max(beam[0] + beam[1] * g5, 1e-3)
    ledger[BEAM] += energy
    for a in range(3):
        p[a] = beam[2 + a] + beam[14] * g1 * beam[8 + a] + beam[15] * g2 * beam[11 + a]
        p[UX + a] = beam[5 + a] + beam[16] * g3 * beam[8 + a] + beam[17] * g4 * beam[11 + a]
    norm = math.sqrt(p[UX] ** 2 + p[UY] ** 2 + p[UZ] ** 2)
    p[UX], p[UY], p[UZ] = p[UX] / norm, p[UY] / norm, p[UZ] / norm
    p[ENERGY] = energy
    p[BIRTH] = energy
    p[MFP] = -math.log(_uniform(rng))
    if not _enter(grid, p):
        ledger[ESCAPED] += energy
        return
    counters[STACK_DEPTH] = 1


@_compiled
def run_batch(
    grid: Arrays, media: Arrays, tables: Arrays, steps: np.ndarray, beam: np.ndarray,
    primaries: int, rng: np.ndarray, stack: np.ndarray, counters: np.ndarray,
    ledger: np.ndarray, floats: np.ndarray, ints: np.ndarray, p: np.ndarray,
) -> tuple[int, int]:  # fmt: skip
    """Transport until ``primaries`` have started and finished or the buffers are full.

    ``p`` is room for the particle in flight (``STATE_SIZE``). Returns the records written
    to ``floats``/``ints`` and the histories completed here.
    """
    n = 0
    completed = 0
    capacity = floats.shape[1]
    while True:
        if counters[STACK_DEPTH] == 0:
            if counters[STARTED] >= primaries:
                return n, completed
            counters[STARTED] += 1
            _start_primary(grid, beam, rng, stack, counters, ledger)
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
