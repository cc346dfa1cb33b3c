"""Geometry read back from engine inputs: the material at sampled points.

Converter tests compare what a geometry *is*, not how it is written: each reader here takes one
engine's input as that engine reads it (SHIELD-HIT12A's fixed-column ``geo.dat`` and
``mat.dat``, FLUKA's free-format bodies, regions and ASSIGNMA cards, TOPAS's nested components,
Geant4's GDML with its boolean solids and placements) and answers, for an (N, 3) array of
points in cm, the material there (a label per point, ``OUTSIDE`` beyond the geometry). The
editor's own answer (``editor_materials``) is the reference: the engines here classify points
the same way (cyclotron.simulators.editor.geometry).

Rotations, as each engine's documentation states them:

- the editor (three.js): a figure is turned by Rx·Ry·Rz of its Euler angles (order XYZ);
- TOPAS and a GDML ``physvol``: a daughter is turned by the inverse of Rz·Ry·Rx of its angles
  (Geant4's ``G4PVPlacement`` takes the rotation of the mother's frame);
- a GDML boolean solid: its second solid is turned by Rz·Ry·Rx itself (``G4GDMLReadSolids``
  builds a ``G4Transform3D`` from the matrix, not its inverse).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import numpy.typing as npt

from cyclotron.simulators.editor.geometry import world_bounds, zone_at
from cyclotron.simulators.editor.model import parse_project

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Labels = npt.NDArray[np.object_]
Inside = Callable[[FloatArray], BoolArray]
OUTSIDE = "outside"


# --- rotations and solids --------------------------------------------------------------------


def _rx(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> FloatArray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def geant4_matrix(degrees: Sequence[float]) -> FloatArray:
    """Rz·Ry·Rx: CLHEP's rotateX, then rotateY, then rotateZ of the identity."""
    x, y, z = (math.radians(float(v)) for v in degrees)
    result: FloatArray = _rz(z) @ _ry(y) @ _rx(x)
    return result


def box(corner: Sequence[float], edges: Sequence[Sequence[float]]) -> Inside:
    """A parallelepiped: a corner and its three (orthogonal) edge vectors."""
    v = np.asarray(corner, dtype=np.float64)
    h = np.asarray(edges, dtype=np.float64)

    lengths = np.sum(h * h, axis=1)

    def inside(p: FloatArray) -> BoolArray:
        if np.any(lengths == 0):  # a body of no volume (YAPTIDE's FLUKA world)
            return np.zeros(len(p), dtype=bool)
        t = (p - v) @ h.T / lengths
        return np.all((t >= 0.0) & (t <= 1.0), axis=1)

    return inside


def cylinder(base: Sequence[float], axis: Sequence[float], radius: float) -> Inside:
    """A right circular cylinder: the centre of one base, the axis to the other, the radius."""
    v = np.asarray(base, dtype=np.float64)
    h = np.asarray(axis, dtype=np.float64)

    def inside(p: FloatArray) -> BoolArray:
        d = p - v
        t = d @ h / (h @ h)
        radial = d - t[:, None] * h
        return (t >= 0.0) & (t <= 1.0) & (np.sum(radial * radial, axis=1) <= radius * radius)

    return inside


def sphere(centre: Sequence[float], radius: float, inner: float = 0.0) -> Inside:
    c = np.asarray(centre, dtype=np.float64)

    def inside(p: FloatArray) -> BoolArray:
        r2 = np.sum((p - c) ** 2, axis=1)
        return (r2 <= radius * radius) & (r2 >= inner * inner)

    return inside


def _tube(rmin: float, rmax: float, half: float) -> Inside:
    def inside(p: FloatArray) -> BoolArray:
        r2 = p[:, 0] ** 2 + p[:, 1] ** 2
        return (np.abs(p[:, 2]) <= half) & (r2 <= rmax * rmax) & (r2 >= rmin * rmin)

    return inside


def _centred_box(half: Sequence[float]) -> Inside:
    limit = np.asarray(half, dtype=np.float64)

    def inside(p: FloatArray) -> BoolArray:
        return np.all(np.abs(p) <= limit, axis=1)

    return inside


def _moved(solid: Inside, matrix: FloatArray, shift: Sequence[float]) -> Inside:
    """``solid`` turned by ``matrix`` (active), then moved by ``shift``."""
    offset = np.asarray(shift, dtype=np.float64)

    def inside(p: FloatArray) -> BoolArray:
        return solid((p - offset) @ matrix)  # rows·M is Mᵀ·p: back into the solid's frame

    return inside


# --- the editor (reference) ------------------------------------------------------------------


def sample_points(project: Mapping[str, Any], count: int, seed: int = 1) -> FloatArray:
    """``count`` points uniform in the box around the project's world figure."""
    low, high = world_bounds(parse_project(project))
    rng = np.random.default_rng(seed)
    points: FloatArray = low + rng.random((count, 3)) * (high - low)
    return points


def points_around_figures(project: Mapping[str, Any], count: int, seed: int = 1) -> FloatArray:
    """``count`` points per figure (the world's aside), uniform in a cube a little larger than
    the figure's bounding sphere: the small figures get their share of the points."""
    model = parse_project(project)
    rng = np.random.default_rng(seed)
    chunks = []
    for figure in model.figures:
        sizes = [getattr(figure, key, 0.0) for key in ("width", "height", "depth")]
        reach = max(
            math.hypot(*sizes) / 2,
            math.hypot(getattr(figure, "radius", 0.0), getattr(figure, "depth", 0.0) / 2),
        )
        centre = np.asarray(figure.position, dtype=np.float64)
        chunks.append(centre + (rng.random((count, 3)) * 2 - 1) * 1.1 * reach)
    points: FloatArray = np.concatenate(chunks) if chunks else np.empty((0, 3))
    return points


def editor_materials(project: Mapping[str, Any], points: FloatArray) -> Labels:
    """The ICRU number (as text) of each point's zone material, as the engines see it."""
    model = parse_project(project)
    zones = zone_at(model, points)
    names = [str(zone.material.icru) for zone in model.zones] + [str(model.world.material.icru)]
    labels = np.array([*names, OUTSIDE], dtype=object)
    result: Labels = labels[np.where(zones < 0, len(names), zones)]
    return result


def editor_zones(project: Mapping[str, Any], points: FloatArray) -> npt.NDArray[np.int32]:
    """Each point's zone index (the world zone last, -1 outside it)."""
    return zone_at(parse_project(project), points)


# --- SHIELD-HIT12A ---------------------------------------------------------------------------


def _columns(line: str, start: int, width: int = 10) -> list[float]:
    fields = [line[i : i + width] for i in range(start, len(line.rstrip()), width)]
    return [float(f) for f in fields if f.strip()]


def shieldhit_materials(files: Mapping[str, str], points: FloatArray) -> Labels:
    """The ICRU number (as text) at each point, reading geo.dat's fixed columns and mat.dat."""
    lines = [line for line in files["geo.dat"].splitlines() if line.strip() and line[:1] != "*"]
    bodies: dict[int, Inside] = {}
    index = 1  # the title line comes first
    pending: tuple[str, int, list[float]] | None = None

    def finish() -> None:
        if pending is not None:
            kind, number, values = pending
            bodies[number] = _shieldhit_body(kind, values)

    while lines[index].strip() != "END":
        line = lines[index]
        kind = line[2:5].strip()
        if kind:
            finish()
            pending = (kind, int(line[5:10]), _columns(line, 10))
        elif pending is not None:
            pending[2].extend(_columns(line, 10))
        index += 1
    finish()
    zones: list[tuple[int, list[list[int]]]] = []
    index += 1
    while lines[index].strip() != "END":
        line = lines[index]
        tokens = re.findall(r"OR|[+-]\d+", line[5:])
        if line[2:5].strip():
            zones.append((int(line[2:5]), [[]]))
        groups = zones[-1][1]
        for token in tokens:
            if token == "OR":
                groups.append([])
            else:
                groups[-1].append(int(token))
        index += 1
    numbers = [int(v) for line in lines[index + 1 :] for v in line.split()]
    ids, media = numbers[: len(zones)], numbers[len(zones) : 2 * len(zones)]
    medium_icru = _shieldhit_media(files["mat.dat"])
    result = np.full(len(points), OUTSIDE, dtype=object)
    medium_of = dict(zip(ids, media, strict=True))
    for number, groups in zones:
        medium = medium_of[number]
        held = np.zeros(len(points), dtype=bool)
        for group in groups:
            part = np.ones(len(points), dtype=bool)
            for signed in group:
                member = bodies[abs(signed)](points)
                part &= member if signed > 0 else ~member
            held |= part
        label = str(medium_icru.get(medium, medium))
        assert np.all(result[held] == OUTSIDE), f"zone {number} overlaps another"
        result[held] = label
    return result


def _shieldhit_body(kind: str, values: list[float]) -> Inside:
    if kind == "RCC":
        return cylinder(values[0:3], values[3:6], values[6])
    if kind == "BOX":
        return box(values[0:3], [values[3:6], values[6:9], values[9:12]])
    if kind == "SPH":
        return sphere(values[0:3], values[3])
    if kind == "RPP":
        x0, x1, y0, y1, z0, z1 = values[:6]
        return box((x0, y0, z0), [(x1 - x0, 0, 0), (0, y1 - y0, 0), (0, 0, z1 - z0)])
    raise ValueError(f"body type {kind!r} is not read here")


def _shieldhit_media(text: str) -> dict[int, int]:
    """Medium number -> ICRU id; 0 (black hole) and 1000 (vacuum) stand for themselves."""
    media = {0: 0, 1000: 1000}
    medium = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "MEDIUM":
            medium = int(words[1])
        elif len(words) >= 2 and words[0] == "ICRU" and medium is not None:
            media[medium] = int(words[1])
    return media


# --- FLUKA -----------------------------------------------------------------------------------

_FLUKA_SIZES = {"RPP": 6, "BOX": 12, "RCC": 7, "SPH": 4}


def fluka_materials(text: str, points: FloatArray, *, strict: bool = True) -> Labels:
    """The FLUKA material name at each point (``BLCKHOLE`` included), from the geometry
    between GEOBEGIN and GEOEND and the ASSIGNMA cards. Regions must not overlap, unless not
    ``strict``: then the first region listed holds a point."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("GEOBEGIN")) + 2
    stop = next(i for i, line in enumerate(lines) if line.startswith("GEOEND"))
    geometry = [line for line in lines[start:stop] if line.strip() and line[:1] != "*"]
    end = geometry.index("END")
    tokens = " ".join(geometry[:end]).split()
    bodies: dict[str, Inside] = {}
    while tokens:
        kind, name = tokens[0], tokens[1]
        size = _FLUKA_SIZES[kind]
        values = [float(v) for v in tokens[2 : 2 + size]]
        tokens = tokens[2 + size :]
        bodies[name] = _shieldhit_body(kind, values)
    regions: dict[str, list[list[str]]] = {}
    last = ""
    for line in geometry[end + 1 :]:
        if line.strip() == "END":
            break
        words = line.split()
        if not words[0].startswith(("+", "-", "|")):
            last, words = words[0], words[2:]
            regions[last] = [[]]
        for word in words:
            if word == "|":
                regions[last].append([])
            else:
                regions[last][-1].append(word)
    assigned: dict[str, str] = {}
    for line in lines[stop:]:
        if line.startswith("ASSIGNMA"):
            words = line.split()
            assigned[words[2]] = words[1]
    result = np.full(len(points), OUTSIDE, dtype=object)
    for region, groups in regions.items():
        held = np.zeros(len(points), dtype=bool)
        for group in groups:
            part = np.ones(len(points), dtype=bool)
            for term in group:
                member = bodies[term[1:]](points)
                part &= member if term[0] == "+" else ~member
            held |= part
        taken = result != OUTSIDE
        assert not strict or not np.any(held & taken), f"region {region} overlaps another"
        result[held & ~taken] = assigned[region]
    return result


# --- TOPAS -----------------------------------------------------------------------------------

_TOPAS_LINE = re.compile(r"^\s*(\w+):Ge/([^/\s]+)/(\w+)\s*=\s*(.*?)\s*$")
_TOPAS_UNITS = {"mm": 0.1, "cm": 1.0, "m": 100.0, "deg": 1.0, "rad": 180.0 / math.pi}


@dataclass
class _Component:
    name: str
    values: dict[str, str] = field(default_factory=dict)
    children: list[_Component] = field(default_factory=list)

    def number(self, key: str, default: float = 0.0) -> float:
        if key not in self.values:
            return default
        words = self.values[key].split()
        scale = _TOPAS_UNITS[words[1]] if len(words) > 1 else 1.0
        return float(words[0]) * scale

    def solid(self) -> Inside:
        kind = self.values["Type"].strip('"')
        if kind == "TsBox":
            return _centred_box([self.number(k) for k in ("HLX", "HLY", "HLZ")])
        if kind == "TsCylinder":
            return _tube(self.number("RMin"), self.number("RMax"), self.number("HL"))
        if kind == "TsSphere":
            return sphere((0, 0, 0), self.number("RMax"), self.number("RMin"))
        raise ValueError(f"component type {kind!r} is not read here")

    def placement(self) -> tuple[FloatArray, FloatArray]:
        """The daughter's active rotation in its parent's frame, and its translation."""
        angles = [self.number(f"Rot{axis}") for axis in "XYZ"]
        shift = np.array([self.number(f"Trans{axis}") for axis in "XYZ"])
        return geant4_matrix(angles).T, shift


def topas_materials(text: str, points: FloatArray) -> Labels:
    """The material of the innermost TOPAS component holding each point (parallel worlds and
    groups aside), ``OUTSIDE`` beyond ``World``."""
    components: dict[str, _Component] = {}
    for line in text.splitlines():
        found = _TOPAS_LINE.match(line)
        if found:
            name, key, value = found.group(2), found.group(3), found.group(4)
            components.setdefault(name, _Component(name)).values[key] = value
    solids = {
        name: c
        for name, c in components.items()
        if "Material" in c.values and c.values.get("IsParallel", "").strip('"').lower() != "true"
    }
    for component in solids.values():
        parent = component.values.get("Parent", '"World"').strip('"')
        if component.name != "World":
            solids[parent].children.append(component)
    result = np.full(len(points), OUTSIDE, dtype=object)
    _topas_fill(solids["World"], points, np.arange(len(points)), result)
    return result


def _topas_fill(
    component: _Component, local: FloatArray, rows: npt.NDArray[np.int64], result: Labels
) -> None:
    inside = component.solid()(local)
    local, rows = local[inside], rows[inside]
    result[rows] = component.values["Material"].strip('"')
    for child in component.children:
        matrix, shift = child.placement()
        _topas_fill(child, (local - shift) @ matrix, rows, result)


# --- Geant4 (GDML) ---------------------------------------------------------------------------


def _attr(element: ET.Element, key: str, scale: float = 1.0) -> float:
    return float(element.attrib.get(key, "0")) * scale


def _lunit(element: ET.Element) -> float:
    return {"mm": 0.1, "cm": 1.0, "m": 100.0}[element.attrib.get("lunit", "mm")]


def _vector(element: ET.Element | None, length: bool) -> list[float]:
    if element is None:
        return [0.0, 0.0, 0.0]
    unit = element.attrib.get("unit", "mm" if length else "rad")
    scale = {"mm": 0.1, "cm": 1.0, "m": 100.0, "deg": 1.0, "rad": 180.0 / math.pi}[unit]
    return [_attr(element, axis, scale) for axis in "xyz"]


def gdml_materials(text: str, points: FloatArray) -> Labels:
    """The material of the innermost GDML volume holding each point, ``OUTSIDE`` beyond the
    world volume."""
    root = ET.fromstring(text)
    solids: dict[str, Inside] = {}
    for element in root.find("solids") or []:
        solids[element.attrib["name"]] = _gdml_solid(element, solids)
    volumes = {v.attrib["name"]: v for v in root.find("structure") or []}
    world = root.find("setup/world")
    assert world is not None
    result = np.full(len(points), OUTSIDE, dtype=object)
    _gdml_fill(volumes[world.attrib["ref"]], volumes, solids, points, np.arange(len(points)),
               result)  # fmt: skip
    return result


def _gdml_solid(element: ET.Element, solids: Mapping[str, Inside]) -> Inside:
    tag = element.tag
    if tag == "box":
        unit = _lunit(element)
        return _centred_box([_attr(element, k, unit) / 2 for k in ("x", "y", "z")])
    if tag == "tube":
        unit = _lunit(element)
        return _tube(_attr(element, "rmin", unit), _attr(element, "rmax", unit),
                     _attr(element, "z", unit) / 2)  # fmt: skip
    if tag == "sphere":
        unit = _lunit(element)
        return sphere((0, 0, 0), _attr(element, "rmax", unit), _attr(element, "rmin", unit))
    if tag in ("union", "subtraction", "intersection"):
        first, second = (
            _moved(
                solids[element.find(part).attrib["ref"]],  # type: ignore[union-attr]
                geant4_matrix(_vector(element.find(f"{prefix}rotation"), length=False)),
                _vector(element.find(f"{prefix}position"), length=True),
            )
            for part, prefix in (("first", "first"), ("second", ""))
        )
        combine: Callable[[BoolArray, BoolArray], BoolArray] = {
            "union": np.logical_or,
            "subtraction": lambda a, b: a & ~b,
            "intersection": np.logical_and,
        }[tag]
        a, b = first, second
        return lambda p: combine(a(p), b(p))
    raise ValueError(f"solid {tag!r} is not read here")


def _gdml_fill(
    volume: ET.Element,
    volumes: Mapping[str, ET.Element],
    solids: Mapping[str, Inside],
    local: FloatArray,
    rows: npt.NDArray[np.int64],
    result: Labels,
) -> None:
    solid = volume.find("solidref")
    material = volume.find("materialref")
    assert solid is not None and material is not None
    inside = solids[solid.attrib["ref"]](local)
    local, rows = local[inside], rows[inside]
    result[rows] = material.attrib["ref"]
    for physvol in volume.findall("physvol"):
        daughter = volumes[physvol.find("volumeref").attrib["ref"]]  # type: ignore[union-attr]
        rotation = _vector(physvol.find("rotation"), length=False)
        position = np.asarray(_vector(physvol.find("position"), length=True))
        matrix = geant4_matrix(rotation).T  # a physvol is turned by the inverse
        _gdml_fill(daughter, volumes, solids, (local - position) @ matrix, rows, result)


# --- comparing -------------------------------------------------------------------------------


def disagreements(reference: Labels, found: Labels, where: BoolArray | None = None) -> list[str]:
    """Where ``found`` does not name the reference's materials one for one: each reference
    label must map to one found label and back. Empty when the two partitions agree."""
    chosen = np.ones(len(reference), dtype=bool) if where is None else where
    pairs: dict[str, set[str]] = {}
    back: dict[str, set[str]] = {}
    for ref, got in zip(reference[chosen], found[chosen], strict=True):
        pairs.setdefault(str(ref), set()).add(str(got))
        back.setdefault(str(got), set()).add(str(ref))
    problems = [f"{ref} read as {sorted(got)}" for ref, got in pairs.items() if len(got) > 1]
    problems += [f"{got} holds {sorted(ref)}" for got, ref in back.items() if len(ref) > 1]
    return problems
