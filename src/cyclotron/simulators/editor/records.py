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


@dataclass(frozen=True)
class BeamSpec:
    """The editor's beam: a proton pencil beam from ``position`` along ``direction``.

    ``energy_sigma`` is the Gaussian spread of the kinetic energy (MeV, 0 for none);
    ``sigma_x``/``sigma_y`` the Gaussian spot size (cm, 0 for a point source), measured in
    the plane perpendicular to ``direction``; ``divergence_x``/``divergence_y`` the angular
    spread (rad, 0 for none).
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


@dataclass(frozen=True)
class StepBatch:
    """Steps transported by an engine, one entry per step, ready to be scored.

    The point (x, y, z) is drawn uniformly along the step, so scoring a step's whole
    deposit and length in the bin of that point is unbiased. ``let`` is the unrestricted
    electronic stopping power in the step's medium at ``energy`` (keV/µm); ``generation`` is
    0 for primaries and 1 or more for secondaries; ``charge`` and ``mass`` are Z and A.
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

    def __len__(self) -> int:
        return int(self.x.shape[0])
