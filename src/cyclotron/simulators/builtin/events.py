"""Nuclear events in the ``builtin`` engine's kernel: a nonelastic event ends a proton and
starts its secondary protons; an elastic scattering on a nucleus or on hydrogen turns it
(and starts the struck proton). What they emit, and at which angles, is in nuclear.py.
"""

from __future__ import annotations

import math

import numpy as np

from cyclotron.simulators.builtin import nuclear
from cyclotron.simulators.builtin.particles import (
    BIRTH,
    ENERGY,
    FIRST,
    GENERATION,
    MFP,
    STACK_DEPTH,
    UX,
    UY,
    UZ,
    compiled,
    copy_state,
    frame,
    turn,
    uniform,
)


@compiled
def nonelastic(
    p: np.ndarray, stack: np.ndarray, counters: np.ndarray, rng: np.ndarray
) -> tuple[float, float]:
    """A nonelastic event ends the proton of ``p``; returns the energy deposited on the spot
    and the energy that leaves as neutral particles.

    Secondary protons go on the stack with energies and angles from ICRU 63 (nuclear.py);
    the deuterons and alphas, and protons too slow to transport or with no room on the
    stack, deposit on the spot; what is left leaves as neutrons and gammas.
    """
    energy = p[ENERGY]
    local = nuclear.local_fraction(energy) * energy
    budget = energy - local
    mean = nuclear.multiplicity(energy)
    count = int(mean) + (1 if uniform(rng) < mean - int(mean) else 0)
    for _ in range(count):
        secondary = min(nuclear.energy_share(energy, uniform(rng)) * energy, budget)
        budget -= secondary
        depth = counters[STACK_DEPTH]
        if secondary < nuclear.MIN_SECONDARY_ENERGY or depth >= stack.shape[0]:
            local += secondary
            continue
        cos_t = nuclear.emission_cosine(secondary / energy, uniform(rng))
        sin_t = math.sqrt(max(0.0, 1.0 - cos_t * cos_t))
        phi = 2.0 * math.pi * uniform(rng)
        ax, ay, az, bx, by, bz = frame(p)
        c, s = sin_t * math.cos(phi), sin_t * math.sin(phi)
        q = stack[depth]
        copy_state(q, p)
        q[UX] = cos_t * p[UX] + c * ax + s * bx
        q[UY] = cos_t * p[UY] + c * ay + s * by
        q[UZ] = cos_t * p[UZ] + c * az + s * bz
        q[ENERGY] = secondary
        q[BIRTH] = secondary
        q[MFP] = -math.log(uniform(rng))
        q[GENERATION] = p[GENERATION] + 1.0
        q[FIRST] = 1.0
        counters[STACK_DEPTH] = depth + 1
    return local, budget


@compiled
def elastic(
    p: np.ndarray, on_hydrogen: bool, stack: np.ndarray, counters: np.ndarray,
    rng: np.ndarray,
) -> float:  # fmt: skip
    """Elastic scattering of ``p`` on a nucleus or on hydrogen (nuclear.py); returns the
    energy deposited on the spot (the nucleus's recoil, or a struck proton with no room on
    the stack). The proton goes on with a new path to its next event."""
    energy = p[ENERGY]
    phi = 2.0 * math.pi * uniform(rng)
    p[MFP] = -math.log(uniform(rng))
    if not on_hydrogen:
        cos_cm = nuclear.elastic_cm_cosine(energy, uniform(rng))
        kept, cos_t = nuclear.elastic_on_nucleus(energy, cos_cm, nuclear.TARGET_MASS_RATIO)
        turn(p, cos_t, phi)
        p[ENERGY] = kept
        return float(energy - kept)
    kept, cos_t, struck, cos_s = nuclear.elastic_on_proton(energy, 2.0 * uniform(rng) - 1.0)
    depth = counters[STACK_DEPTH]
    local = 0.0
    if struck < nuclear.MIN_SECONDARY_ENERGY or depth >= stack.shape[0]:
        local = struck
    else:
        q = stack[depth]
        copy_state(q, p)
        turn(q, cos_s, phi + math.pi)
        q[ENERGY] = struck
        q[BIRTH] = struck
        q[MFP] = -math.log(uniform(rng))
        q[GENERATION] = p[GENERATION] + 1.0
        q[FIRST] = 1.0
        counters[STACK_DEPTH] = depth + 1
    turn(p, cos_t, phi)
    p[ENERGY] = kept
    return local
