"""The editor's beam as engines take it: a ``BeamSpec`` from the project's ``BeamSettings``.

- Shape (``sigma.type``): "Gaussian" takes ``sigma.x``/``sigma.y`` as standard deviations,
  "Flat square" as half-sides, "Flat circular" ``sigma.y`` as the radius (``sigma.x`` is not
  used: SHIELD-HIT12A's and FLUKA's converters write a full disc of radius y too).
- SAD (``sad``, cm): "single" puts a virtual point source ``sad.x`` upstream in both planes,
  "double" ``sad.x`` in the beam's x plane and ``sad.y`` in its y plane (``BeamSpec``).
- A file source (``sourceType`` "file") is the spot list the editor exports as ``sobp.dat``
  (SHIELD-HIT12A's ``USECBEAM``): one spot a line, ``*`` or ``#`` starting a comment, with 5,
  6 or 7 columns::

      E X Y FWHM W
      E X Y FWHM_X FWHM_Y W
      E DE X Y FWHM_X FWHM_Y W

  E is the kinetic energy in GeV per nucleon, DE its Gaussian sigma (0 where not given),
  X and Y the spot centre (cm, along the beam's axes from its position), FWHM the spot's
  Gaussian full widths at half maximum (cm) and W its weight. Each primary comes from one
  spot, drawn by weight; the beam's divergence and SAD apply to every spot.
"""

from __future__ import annotations

import math

import numpy as np

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.editor.project import BeamSettings
from cyclotron.simulators.editor.records import (
    FLAT_CIRCLE,
    FLAT_SQUARE,
    GAUSSIAN,
    BeamSpec,
    Spot,
)

__all__ = ["FWHM_PER_SIGMA", "beam_spec", "parse_spot_list"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
MAX_SPOTS = 100_000
_COMMENTS = ("*", "#", "!")


def parse_spot_list(text: str, nucleons: int = 1) -> tuple[Spot, ...]:
    """The spots of a ``sobp.dat`` (see above); energies become total MeV for ``nucleons``."""
    spots: list[Spot] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(_COMMENTS):
            continue
        try:
            values = [float(v) for v in line.replace(",", " ").split()]
        except ValueError:
            raise ConversionError(
                f"beam source file, line {number}: not numbers: {line!r}"
            ) from None
        energy, spread, x, y, fwhm_x, fwhm_y, weight = _columns(values, number)
        if not all(map(math.isfinite, values)):
            raise ConversionError(f"beam source file, line {number}: a value is not finite")
        if energy <= 0 or spread < 0 or fwhm_x < 0 or fwhm_y < 0 or weight < 0:
            raise ConversionError(
                f"beam source file, line {number}: energy must be positive, spread, widths "
                "and weight not negative"
            )
        scale = 1000.0 * nucleons  # GeV per nucleon -> MeV
        spots.append(
            Spot(
                energy=energy * scale,
                energy_sigma=spread * scale,
                x=x,
                y=y,
                sigma_x=fwhm_x / FWHM_PER_SIGMA,
                sigma_y=fwhm_y / FWHM_PER_SIGMA,
                weight=weight,
            )
        )
        if len(spots) > MAX_SPOTS:
            raise ConversionError(f"beam source file: more than {MAX_SPOTS} spots")
    if not spots:
        raise ConversionError("beam source file: no spots (type 'file' needs its sobp.dat)")
    if not sum(spot.weight for spot in spots) > 0:
        raise ConversionError("beam source file: every spot has weight 0")
    return tuple(spots)


def _columns(values: list[float], number: int) -> tuple[float, ...]:
    """E, DE, X, Y, FWHM_X, FWHM_Y, W from a line of 5, 6 or 7 columns."""
    if len(values) == 5:
        energy, x, y, fwhm, weight = values
        return energy, 0.0, x, y, fwhm, fwhm, weight
    if len(values) == 6:
        energy, x, y, fwhm_x, fwhm_y, weight = values
        return energy, 0.0, x, y, fwhm_x, fwhm_y, weight
    if len(values) == 7:
        return tuple(values)
    raise ConversionError(
        f"beam source file, line {number}: {len(values)} columns (5, 6 or 7 expected)"
    )


def _shape(beam: BeamSettings) -> tuple[str, float, float]:
    if beam.shape == "Flat square":
        return FLAT_SQUARE, beam.sigma_x, beam.sigma_y
    if beam.shape == "Flat circular":
        return FLAT_CIRCLE, beam.sigma_y, beam.sigma_y
    return GAUSSIAN, beam.sigma_x, beam.sigma_y  # another shape is refused by support.py


def _sad(beam: BeamSettings) -> tuple[float, float]:
    if beam.sad == "single":
        return abs(beam.sad_x), abs(beam.sad_x)
    if beam.sad == "double":
        return abs(beam.sad_x), abs(beam.sad_y)
    return 0.0, 0.0  # "none"; another type is refused by support.py


def beam_spec(beam: BeamSettings) -> BeamSpec:
    """The beam as engines take it; a particle that is not a nucleus gets Z = A = 0."""
    z, a = beam.particle.nucleus or (0, 0)
    shape, sigma_x, sigma_y = _shape(beam)
    sad_x, sad_y = _sad(beam)
    spots = parse_spot_list(beam.source_file, max(a, 1)) if beam.source_type == "file" else ()
    return BeamSpec(
        energy=beam.energy,
        energy_sigma=max(beam.energy_sigma, 0.0),
        position=np.array(beam.position, dtype=np.float64),
        direction=np.array(beam.direction, dtype=np.float64),
        sigma_x=sigma_x,
        sigma_y=sigma_y,
        divergence_x=beam.divergence_x / 1000,  # the editor gives mrad
        divergence_y=beam.divergence_y / 1000,
        particle_z=z,
        particle_a=a,
        shape=shape,
        sad_x=sad_x,
        sad_y=sad_y,
        spots=spots,
    )
