"""Where the ``builtin`` engine's primaries start: a spot drawn by weight, its energy, its
shape (Gaussian, flat square, flat circle), divergence and SAD (see transport.beam_arrays).
"""

from __future__ import annotations

import math

import numpy as np

from cyclotron.simulators.builtin.particles import (
    BEAM,
    BIRTH,
    ENERGY,
    ESCAPED,
    FIRST,
    GENERATION,
    MFP,
    NUDGE,
    SHAPE_CIRCLE,
    SHAPE_GAUSSIAN,
    SHAPE_SQUARE,
    STACK_DEPTH,
    UX,
    UY,
    UZ,
    Arrays,
    compiled,
    gauss,
    move,
    uniform,
)


@compiled
def enter(grid: Arrays, p: np.ndarray) -> bool:
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
        move(p, t_in + NUDGE)
    return True


@compiled
def pick_spot(spots: np.ndarray, rng: np.ndarray) -> int:
    """A row of ``spots`` drawn by weight (column 0 is the cumulative weight)."""
    n = spots.shape[0]
    if n == 1:
        return 0
    target = uniform(rng) * spots[n - 1, 0]
    low, high = 0, n - 1
    while low < high:
        middle = (low + high) // 2
        if spots[middle, 0] > target:
            high = middle
        else:
            low = middle + 1
    return low


@compiled
def start_primary(
    grid: Arrays, beam: np.ndarray, spots: np.ndarray, rng: np.ndarray, stack: np.ndarray,
    counters: np.ndarray, ledger: np.ndarray,
) -> None:  # fmt: skip
    """Sample a primary from the beam and its spots (see transport.beam_arrays) onto the
    (empty) stack."""
    p = stack[0]
    p[GENERATION] = 0.0
    p[FIRST] = 1.0
    spot = spots[pick_spot(spots, rng)]
    g1, g2, g3, g4, g5 = gauss(rng), gauss(rng), gauss(rng), gauss(rng), gauss(rng)
    energy = max(spot[1] + spot[2] * g5, 1e-3)
    ledger[BEAM] += energy
    shape = beam[14]
    if shape == SHAPE_SQUARE:
        dx = spot[5] * (2.0 * uniform(rng) - 1.0)
        dy = spot[6] * (2.0 * uniform(rng) - 1.0)
    elif shape == SHAPE_CIRCLE:
        r, phi = spot[5] * math.sqrt(uniform(rng)), 2.0 * math.pi * uniform(rng)
        dx, dy = r * math.cos(phi), r * math.sin(phi)
    else:
        dx, dy = spot[5] * g1, spot[6] * g2
    x, y = spot[3] + dx, spot[4] + dy
    # the virtual source sees a spot's centre, or a flat field's every point
    cx, cy = (spot[3], spot[4]) if shape == SHAPE_GAUSSIAN else (x, y)
    tx = beam[12] * g3 + (cx / beam[15] if beam[15] > 0.0 else 0.0)
    ty = beam[13] * g4 + (cy / beam[16] if beam[16] > 0.0 else 0.0)
    for a in range(3):
        p[a] = beam[a] + x * beam[6 + a] + y * beam[9 + a]
        p[UX + a] = beam[3 + a] + tx * beam[6 + a] + ty * beam[9 + a]
    norm = math.sqrt(p[UX] ** 2 + p[UY] ** 2 + p[UZ] ** 2)
    p[UX], p[UY], p[UZ] = p[UX] / norm, p[UY] / norm, p[UZ] / norm
    p[ENERGY] = energy
    p[BIRTH] = energy
    p[MFP] = -math.log(uniform(rng))
    if not enter(grid, p):
        ledger[ESCAPED] += energy
        return
    counters[STACK_DEPTH] = 1
