"""The particle state of the ``builtin`` engine's kernel and what every part of it shares:
the layout of a particle on the stack, of the records and of the ledger, the random numbers
(xoshiro256+, the state held by the caller, so that a run depends on its seed alone) and
the small operations on a particle (move, turn, copy, push).

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

# Particle state on the stack: position, direction, energy, energy at birth, mean free paths
# left to the next nonelastic event, generation, and 1 while its next step is its first in
# a zone (born, or just crossed into it).
X, Y, Z, UX, UY, UZ, ENERGY, BIRTH, MFP, GENERATION, FIRST = range(11)
STATE_SIZE = 11
# Record rows: floats (x, y, z, edep, length, energy, let, track_let) and ints (zone,
# generation); see StepBatch.
FLOAT_ROWS = 8
INT_ROWS = 2
# Ledger entries (MeV): deposited, left the world or absorbed by a black hole, carried off
# by neutral secondaries of nonelastic events, and the kinetic energy of the beam.
DEPOSITED, ESCAPED, NEUTRAL, BEAM = range(4)
# Counters kept between calls: stack depth, primaries started.
STACK_DEPTH, STARTED = range(2)
MATTER, VACUUM, BLACK_HOLE = range(3)
# Beam shapes (transport.beam_arrays).
SHAPE_GAUSSIAN, SHAPE_SQUARE, SHAPE_CIRCLE = 0.0, 1.0, 2.0
NUDGE = 1e-7  # cm: how far past a zone boundary a crossing step ends
STACK_SIZE = 64

# Quantiles of the standard normal distribution at (i + ½)/N: Gaussian numbers come from one
# uniform by linear interpolation in it (tails cut at ±3.8σ, which changes σ by < 0.1 %).
_NORMAL_QUANTILES = np.array([NormalDist().inv_cdf((i + 0.5) / 8192) for i in range(8192)])

F = TypeVar("F", bound=Callable[..., Any])


def compiled(function: F) -> F:
    """Compile with numba, cached on disk, without reference counting (see above)."""
    return cast(F, njit(_nrt=False, cache=True)(function))  # type: ignore[call-overload]


def inlined(function: F) -> F:
    """Like ``compiled``, and inlined by numba into its callers (the per-step work)."""
    decorate = njit(_nrt=False, cache=True, inline="always")  # type: ignore[call-overload]
    return cast(F, decorate(function))


#: The grid, media and tables as the kernel takes them (tuples of arrays, see transport.py).
Arrays = tuple[Any, ...]


@compiled
def uniform(rng: np.ndarray) -> float:
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


@compiled
def gauss(rng: np.ndarray) -> float:
    """A standard normal number (inverse of the tabulated distribution function)."""
    x = uniform(rng) * _NORMAL_QUANTILES.size - 0.5
    i = min(max(int(x), 0), _NORMAL_QUANTILES.size - 2)
    f = min(max(x - i, 0.0), 1.0)
    return float(_NORMAL_QUANTILES[i] * (1.0 - f) + _NORMAL_QUANTILES[i + 1] * f)


@compiled
def move(p: np.ndarray, distance: float) -> None:
    """Move ``p`` by ``distance`` along its direction."""
    p[X] += distance * p[UX]
    p[Y] += distance * p[UY]
    p[Z] += distance * p[UZ]


@compiled
def frame(p: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """Two unit vectors perpendicular to the direction of ``p`` and to each other."""
    ux, uy, uz = p[UX], p[UY], p[UZ]
    if abs(uz) < 0.9:
        norm = math.sqrt(ux * ux + uy * uy)
        ax, ay, az = -uy / norm, ux / norm, 0.0
    else:
        norm = math.sqrt(uy * uy + uz * uz)
        ax, ay, az = 0.0, -uz / norm, uy / norm
    return ax, ay, az, uy * az - uz * ay, uz * ax - ux * az, ux * ay - uy * ax


@compiled
def copy_state(destination: np.ndarray, source: np.ndarray) -> None:
    """Copy one particle state (element by element: no temporary array)."""
    for a in range(STATE_SIZE):
        destination[a] = source[a]


@compiled
def push(stack: np.ndarray, counters: np.ndarray, p: np.ndarray) -> bool:
    """Put a particle on the stack; False when the stack is full."""
    depth = counters[STACK_DEPTH]
    if depth >= stack.shape[0]:
        return False
    copy_state(stack[depth], p)
    counters[STACK_DEPTH] = depth + 1
    return True


@compiled
def turn(p: np.ndarray, cos_t: float, phi: float) -> None:
    """Turn the direction of ``p`` by θ (its cosine) at azimuth ``phi``."""
    sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
    ax, ay, az, bx, by, bz = frame(p)
    c, s = sin_t * math.cos(phi), sin_t * math.sin(phi)
    ux = cos_t * p[UX] + c * ax + s * bx
    uy = cos_t * p[UY] + c * ay + s * by
    uz = cos_t * p[UZ] + c * az + s * bz
    norm = math.sqrt(ux * ux + uy * uy + uz * uz)
    p[UX], p[UY], p[UZ] = ux / norm, uy / norm, uz / norm
