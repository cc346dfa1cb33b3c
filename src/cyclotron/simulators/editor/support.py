"""What an engine can run: ``check_supported`` refuses a project at submission, naming items.

The editor side itself implements what ``DIFFERENTIALS`` and ``FILTER_KEYWORDS`` list; an
engine states the rest (its beam particles, quantities, detector kinds and materials).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from cyclotron.simulators.editor.project import (
    BeamSettings,
    EditorProject,
    Output,
    Quantity,
    UnsupportedFeature,
    WorldZone,
    Zone,
)
from cyclotron.simulators.editor.records import BLACK_HOLE_ICRU, VACUUM_ICRU, BeamSpec

__all__ = ["DIFFERENTIALS", "FILTER_KEYWORDS", "check_supported", "output_problems"]

#: Differential modifiers the scoring bins: kinetic energy (MeV), per nucleon, per amu.
DIFFERENTIALS = frozenset({"E", "ENUC", "EAMU"})
#: Filter rule keywords the scoring evaluates per step.
FILTER_KEYWORDS = frozenset({"Z", "A", "GEN", "E", "ENUC", "EAMU"})
MAX_DIFFERENTIALS = 2
#: The editor's beam settings every engine of this model takes (see beams.py).
BEAM_SHAPES = ("Gaussian", "Flat square", "Flat circular")
SAD_TYPES = ("none", "single", "double")
SOURCE_TYPES = ("simple", "file")


def check_supported(
    project: EditorProject,
    *,
    engine: str,
    particles: set[tuple[int, int]] | None,
    quantities: set[str],
    detectors: set[str],
    media: Callable[[int], bool],
    energies: tuple[float, float] | None = None,
) -> None:
    """Refuse, naming every item, what ``engine`` cannot run.

    ``particles`` are the beam particles it transports as (Z, A), None for any; ``quantities``
    the quantity keywords it scores, ``detectors`` the detector kinds, and ``media`` tells
    whether it knows an ICRU material (black hole and vacuum are always known). ``energies``
    is the range of beam kinetic energies (MeV) its tables cover, None for any (each spot's
    energy, for a spot list). Every beam shape, SAD and spot-list source of beams.py is
    taken.
    """
    problems = [
        *(f"the special component {name!r}" for name in project.special_components),
        *_beam_problems(project.beam_settings, project.beam, particles, energies),
        *_media_problems(project, media),
        *output_problems(project.outputs, quantities, detectors),
    ]
    if problems:
        # Each item once (an output may score one quantity several times), then what it does.
        listed = "; ".join(dict.fromkeys(problems))
        scores = f"it scores {_listing(quantities)} in {_listing(detectors)} detectors"
        raise UnsupportedFeature(f"{listed}: not supported by the {engine} engine ({scores})")


def _listing(names: set[str] | frozenset[str]) -> str:
    ordered = sorted(names, key=str.lower)
    return ordered[0] if len(ordered) == 1 else f"{', '.join(ordered[:-1])} and {ordered[-1]}"


def _beam_problems(
    beam: BeamSettings,
    spec: BeamSpec,
    particles: set[tuple[int, int]] | None,
    energies: tuple[float, float] | None,
) -> Iterator[str]:
    nucleus = beam.particle.nucleus
    if particles is not None and (nucleus is None or nucleus not in particles):
        yield f"the beam particle {beam.particle.label}"
    if energies is not None:
        low, high = energies
        outside = sorted({e for e in spec.energies if not low <= e <= high})
        if outside:
            listed = ", ".join(f"{e:g}" for e in outside[:5]) + (", ..." if outside[5:] else "")
            yield f"the beam energy {listed} MeV (its tables cover {low:g} to {high:g} MeV)"
    if beam.source_type not in SOURCE_TYPES:
        yield f"the beam source type {beam.source_type!r} (known: simple, file)"
    if beam.sad not in SAD_TYPES:
        yield f"the beam SAD type {beam.sad!r} (known: none, single, double)"
    elif beam.sad != "none" and not (beam.sad_x > 0 and (beam.sad == "single" or beam.sad_y > 0)):
        yield f"the beam SAD {beam.sad_x:g}, {beam.sad_y:g} cm (must be positive)"
    if beam.shape not in BEAM_SHAPES:
        yield f"the beam shape {beam.shape!r} (known: {', '.join(BEAM_SHAPES)})"
    if beam.focal_distance:
        yield "a beam divergence with a focal distance"
    if beam.energy_sigma < 0:
        yield "a flat beam energy spread (negative energySpread)"


def _media_problems(project: EditorProject, media: Callable[[int], bool]) -> Iterator[str]:
    zones: list[Zone | WorldZone] = [*project.zones, project.world]
    for zone in zones:
        icru = zone.material.icru
        if icru not in (BLACK_HOLE_ICRU, VACUUM_ICRU) and not media(icru):
            yield f"material ICRU {icru} ({zone.material.name!r}) of zone {zone.name!r}"
        if isinstance(zone, Zone) and zone.custom_stopping_power:
            yield f"the custom stopping power of zone {zone.name!r}"


def output_problems(
    outputs: Sequence[Output], quantities: set[str] | frozenset[str], detectors: set[str]
) -> Iterator[str]:
    """What of the outputs cannot be scored with these quantities and detector kinds."""
    names = [output.name for output in outputs]
    for output in outputs:
        what = f"output {output.name!r}"
        if not output.name or names.count(output.name) > 1:
            yield f"the output name {output.name!r} (names must be unique and not empty)"
        if output.trace:
            yield f"the trace of {what}"
        if output.detector.kind not in detectors:
            yield f"detector kind {output.detector.kind!r} ({what})"
        for quantity in output.quantities:
            if quantity.keyword not in quantities:
                yield f"the quantity {quantity.keyword!r} of {what}"
            yield from _quantity_problems(quantity, f"quantity {quantity.name!r} of {what}")


def _quantity_problems(quantity: Quantity, what: str) -> Iterator[str]:
    yield from (f"the setting {setting!r} of {what}" for setting in quantity.settings)
    if len(quantity.modifiers) > MAX_DIFFERENTIALS:
        yield f"more than {MAX_DIFFERENTIALS} differential modifiers on {what}"
    for modifier in quantity.modifiers:
        if modifier.kind not in DIFFERENTIALS:
            yield f"the differential modifier {modifier.kind!r} of {what}"
        elif modifier.upper <= modifier.lower or (modifier.log and modifier.lower <= 0):
            yield f"the differential range [{modifier.lower}, {modifier.upper}] of {what}"
    chosen = quantity.filter
    if chosen is not None:
        if chosen.unsupported:
            yield f"filter {chosen.name!r} ({chosen.unsupported})"
        for rule in chosen.rules:
            if rule.keyword not in FILTER_KEYWORDS:
                yield f"the filter keyword {rule.keyword!r} of filter {chosen.name!r}"
