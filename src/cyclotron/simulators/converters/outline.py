"""The outline of an editor project that every reader of it relies on, checked before any runs.

The converters (SHIELD-HIT12A, FLUKA, TOPAS, Geant4) and the editor model (``builtin``,
``mcsquare``) each read the project their own way. What they all take for granted is checked
here once, so that a malformed project is refused naming the item (``figure 3 ('Box'):
missing geometryType``), never with a Python exception's text, and a physically meaningless
one is refused before it runs: every number finite, every size positive, the beam's energy
positive and its number of particles a whole number. What one engine cannot run (a particle,
an energy outside its tables) is that engine's own check.

Items are numbered from 1 in the order of their list, as the editor lists them; a figure
inside another (the editor's Geant4 mode) is numbered after its parent's (``figure 1.2``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from cyclotron.domain.primaries import MAX_PRIMARIES
from cyclotron.simulators.converters import ConversionError

__all__ = ["check_outline", "read_checked"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# The first problems found are reported, one after another.
MAX_REPORTED = 10
HEAVY_ION = 25  # the editor's particle id of an ion given by Z and A
FIGURE_SIZES = {
    "BoxGeometry": ("width", "height", "depth"),
    "CylinderGeometry": ("radius", "depth"),
    "HollowCylinderGeometry": ("radius", "depth"),
    "SphereGeometry": ("radius",),
}
DETECTOR_SIZES = {"Cyl": ("radius", "depth"), "Mesh": ("width", "height", "depth")}
DETECTOR_BINS = {
    "Cyl": ("radialSegments", "angularSegments", "zSegments"),
    "Mesh": ("xSegments", "ySegments", "zSegments"),
}


def check_outline(project: Any) -> None:
    """ConversionError naming the first problems, unless ``project`` has the outline."""
    problems: list[str] = []
    if not isinstance(project, Mapping):
        raise ConversionError("the project must be a JSON object")
    _Project(project, problems).check()
    if problems:
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        raise ConversionError("; ".join(shown) + (f"; and {more} more" if more > 0 else ""))


def read_checked(read: Callable[[Mapping[str, Any]], T], project: Any) -> T:
    """``read(project)`` once the outline holds. What ``read`` trips over beyond the outline is
    refused in the user's words, never with the Python exception's text (which is logged)."""
    check_outline(project)
    try:
        return read(project)
    except ConversionError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        log.warning("a malformed editor project: %s: %s", type(exc).__name__, exc)
        if isinstance(exc, KeyError) and isinstance(exc.args[0], str):
            raise ConversionError(f"malformed editor project: missing {exc.args[0]}") from exc
        message = "malformed editor project: a value is not of the kind the editor writes there"
        raise ConversionError(message) from exc


def _geant4_mode(project: Mapping[str, Any]) -> bool:
    """A project of the editor's Geant4 mode: a tree of figures, the first being the world
    (as ``editor.model`` tells it)."""
    meta = project.get("project")
    if isinstance(meta, Mapping) and str(meta.get("simulator", "")).lower() == "geant4":
        return True
    figures = project.get("figureManager")
    figures = figures.get("figures") if isinstance(figures, Mapping) else None
    if isinstance(figures, str) or not isinstance(figures, Sequence):
        return False
    return any(
        isinstance(f, Mapping) and str(f.get("type", "")).startswith("Geant4") for f in figures
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _label(kind: str, number: str, item: Mapping[str, Any]) -> str:
    name = item.get("name")
    return f"{kind} {number} ({name!r})" if isinstance(name, str) and name else f"{kind} {number}"


class _Item:
    """One object of the project and how messages name it; problems go to a shared list."""

    def __init__(self, value: Mapping[str, Any], where: str, problems: list[str]) -> None:
        self.value, self.where, self.problems = value, where, problems

    def refuse(self, message: str) -> None:
        self.problems.append(f"{self.where}: {message}")

    def get(self, key: str, required: bool) -> Any:
        """The value at ``key`` (None when absent or null); a missing required one is named."""
        value = self.value.get(key)
        if value is None and required:
            self.refuse(f"missing {key}")
        return value

    def section(self, key: str, where: str, required: bool = True) -> _Item | None:
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.refuse(f"{key} must be an object, not {_shown(value)}")
            return None
        return _Item(value, where, self.problems)

    def items(self, key: str, required: bool = True) -> list[Mapping[str, Any]]:
        """The list of objects at ``key`` (empty when refused)."""
        value = self.get(key, required)
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, Sequence):
            self.refuse(f"{key} must be a list, not {_shown(value)}")
            return []
        for number, item in enumerate(value, start=1):
            if not isinstance(item, Mapping):
                self.refuse(f"{key}: item {number} must be an object, not {_shown(item)}")
                return []
        return list(value)

    def text(self, key: str, required: bool = True) -> str | None:
        value = self.get(key, required)
        if value is not None and not isinstance(value, str):
            self.refuse(f"{key} must be text, not {_shown(value)}")
            return None
        return value

    def number(
        self,
        key: str,
        required: bool = False,
        *,
        positive: bool = False,
        least: float | None = None,
    ) -> float | None:
        """A finite number (not a boolean), positive or at least ``least`` when told; None when
        absent or refused."""
        value = self.get(key, required)
        if value is None:
            return None
        finite = isinstance(value, int | float) and not isinstance(value, bool)
        if not finite or not math.isfinite(value):
            self.refuse(f"{key} must be a finite number, not {_shown(value)}")
            return None
        if positive and value <= 0:
            self.refuse(f"{key} must be positive, not {_shown(value)}")
            return None
        if least is not None and value < least:
            self.refuse(f"{key} must be at least {least:g}, not {_shown(value)}")
            return None
        return float(value)

    def whole(self, key: str, required: bool = False, most: int | None = None) -> None:
        """A whole number of at least 1 (and at most ``most``)."""
        value = self.number(key, required)
        above = most is not None and value is not None and value > most
        if value is not None and (value < 1 or not value.is_integer() or above):
            bound = f"from 1 to {most}" if most is not None else "of at least 1"
            self.refuse(f"{key} must be a whole number {bound}, not {_shown(self.value[key])}")

    def integer(self, key: str, required: bool = True) -> None:
        value = self.get(key, required)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            self.refuse(f"{key} must be an integer, not {_shown(value)}")

    def vector(self, key: str, required: bool = False) -> tuple[float, float, float] | None:
        value = self.get(key, required)
        if value is None:
            return None
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 3:
            self.refuse(f"{key} must be three numbers, not {_shown(value)}")
            return None
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        ):
            self.refuse(f"{key} must be three finite numbers, not {_shown(value)}")
            return None
        x, y, z = (float(v) for v in value)
        return (x, y, z)


class _Project:
    def __init__(self, project: Mapping[str, Any], problems: list[str]) -> None:
        self.root = _Item(project, "the project", problems)
        self.problems = problems

    def item(self, value: Mapping[str, Any], kind: str, number: int | str) -> _Item:
        return _Item(value, _label(kind, str(number), value), self.problems)

    def check(self) -> None:
        root = self.root
        root.section("project", "project", required=False)
        self._beam(root.section("beam", "beam"))
        figures = root.section("figureManager", "figureManager")
        if figures is not None:
            for number, figure in enumerate(figures.items("figures"), start=1):
                self._figure(figure, str(number))
        zones = root.section("zoneManager", "zoneManager", required=False)
        if zones is not None:
            for number, zone in enumerate(zones.items("zones"), start=1):
                self._zone(self.item(zone, "zone", number))
            world = zones.section("worldZone", "world zone", required=False)
            if world is not None:
                world.text("uuid", required=False)
                world.text("materialUuid", required=False)
                # In the Geant4 mode the first figure is the world: this one's sizes are unused.
                sizes = {} if _geant4_mode(root.value) else FIGURE_SIZES
                self._shape(world, sizes, world=True)
        materials = root.section("materialManager", "materialManager", required=False)
        if materials is not None:
            for number, material in enumerate(materials.items("materials"), start=1):
                self._material(self.item(material, "material", number))
        detectors = root.section("detectorManager", "detectorManager", required=False)
        if detectors is not None:
            for number, detector in enumerate(detectors.items("detectors"), start=1):
                self._detector(self.item(detector, "detector", number))
        scoring = root.section("scoringManager", "scoringManager")
        if scoring is not None:
            for number, chosen in enumerate(scoring.items("filters", required=False), start=1):
                self._filter(self.item(chosen, "filter", number))
            for number, output in enumerate(scoring.items("outputs"), start=1):
                self._output(self.item(output, "output", number))
        physics = root.section("physic", "physic", required=False)
        if physics is not None:
            physics.number("energyLoss", positive=True)
            for key in ("energyModelStraggling", "multipleScattering", "stoppingPowerTable"):
                physics.text(key, required=False)
            physics.section("availableStoppingPowerFiles", "physic", required=False)
        root.section("specialComponentsManager", "specialComponentsManager", required=False)

    # -- beam ---------------------------------------------------------------------------------

    def _beam(self, beam: _Item | None) -> None:
        if beam is None:
            return
        particle = beam.section("particle", "beam particle")
        if particle is not None:
            particle.integer("id")
            if particle.value.get("id") == HEAVY_ION:  # its nucleus is given
                particle.whole("z")
                particle.whole("a")
        beam.number("energy", required=True, positive=True)
        beam.number("energySpread")
        beam.number("energyLowCutoff")
        beam.number("energyHighCutoff")
        beam.whole("numberOfParticles", required=True, most=MAX_PRIMARIES)
        beam.vector("position")
        if beam.vector("direction") == (0.0, 0.0, 0.0):
            beam.refuse("direction must not be the zero vector")
        sigma = beam.section("sigma", "beam sigma", required=False)
        if sigma is not None:
            sigma.text("type", required=False)
            sigma.number("x")
            sigma.number("y")
        sad = beam.section("sad", "beam sad", required=False)
        if sad is not None:
            kind = sad.text("type")
            sad.number("x", required=kind in ("single", "double"))
            sad.number("y", required=kind == "double")
        divergence = beam.section("divergence", "beam divergence", required=False)
        if divergence is not None:
            for field in ("x", "y", "distanceToFocal"):
                divergence.number(field)
        beam.text("sourceType", required=False)
        beam.section("sourceFile", "beam sourceFile", required=False)

    # -- geometry -----------------------------------------------------------------------------

    def _figure(self, figure: Mapping[str, Any], number: str) -> None:
        item = self.item(figure, "figure", number)
        item.text("uuid")
        item.text("name", required=False)
        # A Geant4-mode world (a figure holding others) has the world zone's editor artefact.
        self._shape(item, FIGURE_SIZES, world="." not in number and "children" in figure)
        material = item.section("simulationMaterial", f"{item.where} material", required=False)
        if material is not None:
            self._material(material)
        for child, inner in enumerate(item.items("children", required=False), start=1):
            self._figure(inner, f"{number}.{child}")

    def _shape(
        self, item: _Item, sizes: Mapping[str, Sequence[str]], *, world: bool = False
    ) -> tuple[str | None, _Item | None]:
        """``geometryData``: its type, placement and sizes (positive, for the types in
        ``sizes``); the type and the parameters."""
        data = item.section("geometryData", item.where)
        if data is None:
            return None, None
        kind = data.text("geometryType")
        data.vector("position", required=kind in sizes)
        data.vector("rotation")
        params = data.section("parameters", item.where, required=kind in sizes)
        if kind is None or params is None:
            return kind, params
        radius = None
        for key in sizes.get(kind, ()):
            value = params.number(key, required=True, positive=True)
            radius = value if key == "radius" else radius
        inner = params.number("innerRadius")
        outside = inner is not None and (inner < 0 or (radius is not None and inner >= radius))
        if outside and not world:  # a world's inner radius is an editor artefact
            params.refuse(f"innerRadius must be from 0 to below radius, not {_shown(inner)}")
        return kind, params

    def _zone(self, zone: _Item) -> None:
        zone.text("uuid", required=False)
        zone.text("name", required=False)
        zone.text("materialUuid", required=False)
        overrides = zone.section("materialPropertiesOverrides", zone.where, required=False)
        if overrides is not None:
            overrides.number("density", least=0)
        custom = zone.section("customMaterial", f"{zone.where} customMaterial", required=False)
        if custom is not None:
            self._material(custom)
        rows = zone.get("unionOperations", False)
        if rows is None:
            return
        if isinstance(rows, str) or not isinstance(rows, Sequence):
            zone.refuse(f"unionOperations must be a list of lists, not {_shown(rows)}")
            return
        for row_number, row in enumerate(rows, start=1):
            if isinstance(row, str) or not isinstance(row, Sequence):
                zone.refuse(f"unionOperations {row_number} must be a list, not {_shown(row)}")
                continue
            for step_number, step in enumerate(row, start=1):
                where = f"{zone.where} operation {row_number}.{step_number}"
                if not isinstance(step, Mapping):
                    self.problems.append(f"{where} must be an object, not {_shown(step)}")
                    continue
                operation = _Item(step, where, self.problems)
                operation.text("mode")
                operation.text("objectUuid")

    def _material(self, material: _Item) -> None:
        material.text("uuid", required=False)
        material.text("name", required=False)
        material.text("sanitizedName", required=False)
        material.integer("icru")
        material.number("density", least=0)  # vacuum's is 0

    # -- scoring ------------------------------------------------------------------------------

    def _detector(self, detector: _Item) -> None:
        detector.text("uuid")
        detector.text("name")
        kind, params = self._shape(detector, DETECTOR_SIZES)
        if kind is None or params is None:
            return
        for key in DETECTOR_BINS.get(kind, ()):
            params.whole(key)
        params.text("zoneUuid", required=False)

    def _filter(self, chosen: _Item) -> None:
        chosen.text("uuid")
        chosen.text("name", required=False)
        chosen.text("filterType", required=False)
        data = chosen.section("data", chosen.where, required=False)
        if data is not None:
            for number, kind in enumerate(data.items("particleTypes", False), start=1):
                _Item(kind, f"{chosen.where} particle {number}", self.problems).integer("id")
        particle = chosen.section("particle", f"{chosen.where} particle", required=False)
        if particle is not None:
            particle.integer("id")
        for number, rule in enumerate(chosen.items("rules", required=False), start=1):
            item = _Item(rule, f"{chosen.where} rule {number}", self.problems)
            item.text("keyword")
            item.text("operator")
            item.number("value", required=True)

    def _output(self, output: _Item) -> None:
        output.text("uuid", required=False)
        output.text("name", required=False)
        output.text("detectorUuid", required=False)
        for number, quantity in enumerate(output.items("quantities", required=False), start=1):
            item = self.item(quantity, f"{output.where} quantity", number)
            item.text("keyword")
            item.text("name", required=False)
            item.text("filter", required=False)
            for modifier_number, modifier in enumerate(
                item.items("modifiers", required=False), start=1
            ):
                where = f"{item.where} modifier {modifier_number}"
                self._modifier(_Item(modifier, where, self.problems))

    def _modifier(self, modifier: _Item) -> None:
        modifier.text("diffType")
        modifier.number("lowerLimit", required=True)
        modifier.number("upperLimit", required=True)
        modifier.whole("binsNumber", required=True)
