"""What passes between the editor model, the transport engines and the scoring.

The editor side builds a ``VoxelGrid`` and a ``BeamSpec`` from a project; an engine
transports particles through the grid and hands what it did, step by step, to the scoring as
``StepBatch`` records (the ``builtin`` engine) or as dose and LET per voxel (``mcsquare``).
Lengths are in cm, energies in MeV, densities in g/cm³.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

#: The editor's ICRU ids with a special meaning.
BLACK_HOLE_ICRU = 0  # absorbs whatever enters it: particles there are dropped
VACUUM_ICRU = 1000  # no energy loss, no scattering


@dataclass(frozen=True)
class Medium:
    """One material as the project uses it (ICRU id and the density it states)."""

    icru: int
    name: str
    density: float


@dataclass(frozen=True)
class VoxelGrid:
    """The project's geometry as a box of voxels, each holding the index of its zone.

    ``zones[i, j, k]`` covers [origin + (i, j, k)·spacing, origin + (i+1, j+1, k+1)·spacing).
    A zone index is -1 outside the world (particles reaching it are dropped); otherwise it
    indexes ``zone_names`` and ``zone_media``, and ``zone_media`` indexes ``media``.
    """

    origin: FloatArray  # (3,)
    spacing: FloatArray  # (3,)
    zones: IntArray  # (nx, ny, nz)
    zone_names: tuple[str, ...]
    zone_media: IntArray  # (nzones,)
    media: tuple[Medium, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        nx, ny, nz = self.zones.shape
        return int(nx), int(ny), int(nz)


#: Beam shapes: Gaussian (sigma_x/sigma_y are the spot's standard deviations), flat square
#: (they are the half-sides) and flat circle (sigma_x = sigma_y is the radius).
GAUSSIAN, FLAT_SQUARE, FLAT_CIRCLE = "gaussian", "flat square", "flat circle"
BEAM_SHAPES = (GAUSSIAN, FLAT_SQUARE, FLAT_CIRCLE)


@dataclass(frozen=True)
class Spot:
    """One spot of a beam read from a spot list (SHIELD-HIT12A's ``sobp.dat``).

    ``x``/``y`` are the spot centre's offsets (cm) from the beam position along the beam's x
    and y axes (``beam_axes``); ``sigma_x``/``sigma_y`` its Gaussian widths (cm) and
    ``energy_sigma`` its Gaussian energy spread (MeV); ``weight`` its share of the primaries
    (relative to the other spots').
    """

    energy: float
    energy_sigma: float
    x: float
    y: float
    sigma_x: float
    sigma_y: float
    weight: float


@dataclass(frozen=True)
class BeamSpec:
    """The editor's beam: protons from ``position`` along ``direction``.

    ``energy_sigma`` is the Gaussian spread of the kinetic energy (MeV, 0 for none);
    ``sigma_x``/``sigma_y`` the spot's extent (cm, 0 for a point source), measured in the
    plane perpendicular to ``direction`` along the beam's axes (``beam_axes``), as ``shape``
    says; ``divergence_x``/``divergence_y`` the Gaussian angular spread (rad, 0 for none).
    ``sad_x``/``sad_y`` (cm, 0 for a parallel beam) put a virtual point source that far
    upstream of the position: a particle starting at (x, y) from the axis gets the slopes
    (x / sad_x, y / sad_y) on top of its divergence, where (x, y) is its spot's centre, or for
    a flat shape the point where it starts. With ``spots`` (a spot list), each primary comes
    from one spot, drawn by weight, with the spot's energy, spread, centre and Gaussian
    widths; ``energy``, ``energy_sigma``, ``sigma_*`` and ``shape`` are then not used.
    """

    energy: float  # kinetic energy per particle (MeV)
    energy_sigma: float
    position: FloatArray  # (3,)
    direction: FloatArray  # (3,) unit vector
    sigma_x: float = 0.0
    sigma_y: float = 0.0
    divergence_x: float = 0.0
    divergence_y: float = 0.0
    particle_z: int = 1
    particle_a: int = 1
    shape: str = GAUSSIAN
    sad_x: float = 0.0
    sad_y: float = 0.0
    spots: tuple[Spot, ...] = ()

    @property
    def energies(self) -> tuple[float, ...]:
        """The kinetic energies (MeV) the beam starts particles at (before their spread)."""
        return tuple(spot.energy for spot in self.spots) if self.spots else (self.energy,)


def beam_axes(direction: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The beam's x and y axes: x̂ (or ŷ, for a beam near x) made perpendicular to the
    direction, and y = direction × x. For a beam along +z they are x̂ and ŷ."""
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    seed_axis = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = seed_axis - np.dot(seed_axis, d) * d
    a /= np.linalg.norm(a)
    return a, np.cross(d, a)


@dataclass(frozen=True)
class StepBatch:
    """Steps transported by an engine, one entry per step, ready to be scored.

    The point (x, y, z) is drawn uniformly along the step, so scoring a step's whole
    deposit and length in the bin of that point is unbiased. A record of zero length is a
    deposit at a point (the local energy of a nonelastic event, where it happened). ``let``
    is the unrestricted electronic stopping power in the step's medium at ``energy``
    (keV/µm), the value its deposit weights (dLET), and ``track_let`` the one its length
    weights (tLET); on a step that stops its particle, over which the stopping power rises
    tenfold, they are the dose- and the track-averaged stopping power over the step instead.
    ``generation`` is 0 for primaries and 1 or more for secondaries; ``charge`` and ``mass``
    are Z and A.
    """

    x: FloatArray
    y: FloatArray
    z: FloatArray
    edep: FloatArray  # MeV deposited on the step
    length: FloatArray  # cm
    energy: FloatArray  # kinetic energy at the step's middle (MeV)
    let: FloatArray  # keV/µm
    zone: IntArray  # zone index of the point
    generation: IntArray
    charge: IntArray
    mass: IntArray
    track_let: FloatArray | None = None  # keV/µm; None: ``let``

    @property
    def track_averaged_let(self) -> FloatArray:
        """The LET a step's track length weights (tLET): ``track_let``, else ``let``."""
        return self.let if self.track_let is None else self.track_let

    def __len__(self) -> int:
        return int(self.x.shape[0])
