"""Geant4 input from a YAPTIDE editor project: ``geometry.gdml`` and ``run.mac``.

The files follow the layout of YAPTIDE's own Geant4 converter (the one the web UI runs in the
browser). A Geant4 project's figure tree becomes nested GDML volumes named ``solid``, ``logic`` and
``phys`` plus the figure's name in PascalCase, the first top-level figure being the world. The
macro defines a GPS source, one scoring mesh per detector (a probe when a detector scores an
energy spectrum) with its quantities and filters, ``/run/beamOn`` with the whole job's primaries
and one ``/score/dumpQuantityToFile`` per quantity.

Beyond that converter, this one also takes projects built from zones (SHIELD-HIT12A and FLUKA
style: each zone a GDML boolean solid of its figures, placed in the world zone, materials mapped
from ICRU numbers to Geant4 NIST names), figure and detector rotations (editor Euler angles in
degrees, applied X, then Y, then Z) and the filter types other than ``particle``. Where that
converter writes something Geant4 would misread, this one writes what the project states: photons
as ``gamma`` rather than ``geantino``, ions with their full charge rather than none. Whatever the
two files cannot express is refused with a ConversionError naming the item.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.outline import read_checked
from cyclotron.simulators.converters.values import count

__all__ = ["GDML_FILE", "MACRO_FILE", "geant4_files"]

GDML_FILE = "geometry.gdml"
MACRO_FILE = "run.mac"

Vector = tuple[float, float, float]
Matrix = tuple[Vector, Vector, Vector]

_BLACK_HOLE, _VACUUM = "BlackHole", "G4_Galactic"
_EPS = 1e-12
_XSD = "http://cern.ch/service-spi/app/releases/GDML/schema/gdml.xsd"
_XML_HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="no" ?>'

# ICRU material numbers 1-98 are the elements, 99-278 the NIST compounds in Geant4's own order;
# ICRU 172 (glucose) has no Geant4 NIST material.
_ELEMENT_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy "
    "Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf"
)
_COMPOUND_NAMES = """
A-150_TISSUE ACETONE ACETYLENE ADENINE ADIPOSE_TISSUE_ICRP AIR ALANINE ALUMINUM_OXIDE AMBER AMMONIA
ANILINE ANTHRACENE B-100_BONE BAKELITE BARIUM_FLUORIDE BARIUM_SULFATE BENZENE BERYLLIUM_OXIDE BGO
BLOOD_ICRP BONE_COMPACT_ICRU BONE_CORTICAL_ICRP BORON_CARBIDE BORON_OXIDE BRAIN_ICRP BUTANE
N-BUTYL_ALCOHOL C-552 CADMIUM_TELLURIDE CADMIUM_TUNGSTATE CALCIUM_CARBONATE CALCIUM_FLUORIDE
CALCIUM_OXIDE CALCIUM_SULFATE CALCIUM_TUNGSTATE CARBON_DIOXIDE CARBON_TETRACHLORIDE
CELLULOSE_CELLOPHANE CELLULOSE_BUTYRATE CELLULOSE_NITRATE CERIC_SULFATE CESIUM_FLUORIDE
CESIUM_IODIDE CHLOROBENZENE CHLOROFORM CONCRETE CYCLOHEXANE 1,2-DICHLOROBENZENE
DICHLORODIETHYL_ETHER 1,2-DICHLOROETHANE DIETHYL_ETHER N,N-DIMETHYL_FORMAMIDE DIMETHYL_SULFOXIDE
ETHANE ETHYL_ALCOHOL ETHYL_CELLULOSE ETHYLENE EYE_LENS_ICRP FERRIC_OXIDE FERROBORIDE FERROUS_OXIDE
FERROUS_SULFATE FREON-12 FREON-12B2 FREON-13 FREON-13B1 FREON-13I1 GADOLINIUM_OXYSULFIDE
GALLIUM_ARSENIDE GEL_PHOTO_EMULSION Pyrex_Glass GLASS_LEAD GLASS_PLATE - GLUTAMINE GLYCEROL GUANINE
GYPSUM N-HEPTANE N-HEXANE KAPTON LANTHANUM_OXYBROMIDE LANTHANUM_OXYSULFIDE LEAD_OXIDE LITHIUM_AMIDE
LITHIUM_CARBONATE LITHIUM_FLUORIDE LITHIUM_HYDRIDE LITHIUM_IODIDE LITHIUM_OXIDE LITHIUM_TETRABORATE
LUNG_ICRP M3_WAX MAGNESIUM_CARBONATE MAGNESIUM_FLUORIDE MAGNESIUM_OXIDE MAGNESIUM_TETRABORATE
MERCURIC_IODIDE METHANE METHANOL MIX_D_WAX MS20_TISSUE MUSCLE_SKELETAL_ICRP MUSCLE_STRIATED_ICRU
MUSCLE_WITH_SUCROSE MUSCLE_WITHOUT_SUCROSE NAPHTHALENE NITROBENZENE NITROUS_OXIDE NYLON-8062
NYLON-6-6 NYLON-6-10 NYLON-11_RILSAN OCTANE PARAFFIN N-PENTANE PHOTO_EMULSION
PLASTIC_SC_VINYLTOLUENE PLUTONIUM_DIOXIDE POLYACRYLONITRILE POLYCARBONATE POLYCHLOROSTYRENE
POLYETHYLENE MYLAR PLEXIGLASS POLYOXYMETHYLENE POLYPROPYLENE POLYSTYRENE TEFLON
POLYTRIFLUOROCHLOROETHYLENE POLYVINYL_ACETATE POLYVINYL_ALCOHOL POLYVINYL_BUTYRAL
POLYVINYL_CHLORIDE POLYVINYLIDENE_CHLORIDE POLYVINYLIDENE_FLUORIDE POLYVINYL_PYRROLIDONE
POTASSIUM_IODIDE POTASSIUM_OXIDE PROPANE lPROPANE N-PROPYL_ALCOHOL PYRIDINE RUBBER_BUTYL
RUBBER_NATURAL RUBBER_NEOPRENE SILICON_DIOXIDE SILVER_BROMIDE SILVER_CHLORIDE SILVER_HALIDES
SILVER_IODIDE SKIN_ICRP SODIUM_CARBONATE SODIUM_IODIDE SODIUM_MONOXIDE SODIUM_NITRATE STILBENE
SUCROSE TERPHENYL TESTIS_ICRP TETRACHLOROETHYLENE THALLIUM_CHLORIDE TISSUE_SOFT_ICRP
TISSUE_SOFT_ICRU-4 TISSUE-METHANE TISSUE-PROPANE TITANIUM_DIOXIDE TOLUENE TRICHLOROETHYLENE
TRIETHYL_PHOSPHATE TUNGSTEN_HEXAFLUORIDE URANIUM_DICARBIDE URANIUM_MONOCARBIDE URANIUM_OXIDE UREA
VALINE VITON WATER WATER_VAPOR XYLENE
"""
_ELEMENTS = _ELEMENT_SYMBOLS.split()
_COMPOUNDS = _COMPOUND_NAMES.split()
_FIRST_COMPOUND = 99

# Particle ids differ between the editor's Geant4 list and the SHIELD-HIT12A/FLUKA one.
_GEANT4_PARTICLES = {
    1: "neutron", 2: "proton", 3: "gamma", 4: "e-", 5: "e+",
    6: "alpha", 7: "mu-", 8: "mu+", 9: "pi-", 10: "pi+",
}  # fmt: skip
_COMMON_PARTICLES = {
    1: "neutron", 2: "proton", 3: "pi-", 4: "pi+", 7: "anti_proton", 8: "kaon-", 9: "kaon+",
    10: "kaon0", 11: "anti_kaon0", 15: "mu-", 16: "mu+", 21: "deuteron", 22: "triton",
    23: "He3", 24: "alpha", 26: "e-",
}  # fmt: skip
_GEANT4_CARBON_12, _HEAVY_ION = 11, 25
_NUCLEONS = {"neutron": 1, "proton": 1, "anti_proton": 1, "deuteron": 2, "triton": 3, "He3": 3,
             "alpha": 4}  # fmt: skip
_CHARGE_MASS = {"neutron": (0, 1), "proton": (1, 1), "deuteron": (1, 2), "triton": (1, 3),
                "He3": (2, 3), "alpha": (2, 4)}  # fmt: skip

_QUANTITIES = {
    "DoseGy": "doseDeposit", "Dose": "doseDeposit", "Energy": "energyDeposit",
    "Fluence": "cellFlux", "KineticEnergySpectrum": "cellFlux",
}  # fmt: skip
_SPECTRUM = "KineticEnergySpectrum"
_ENERGY_UNITS = ("meV", "eV", "keV", "MeV", "GeV")
_BOOLEANS = ("union", "subtraction", "intersection")


def geant4_files(project: Mapping[str, Any]) -> dict[str, str]:
    """``geometry.gdml`` and ``run.mac`` for an editor project; ConversionError if impossible."""
    return read_checked(_files, project)


def _files(project: Mapping[str, Any]) -> dict[str, str]:
    return {GDML_FILE: _gdml(project), MACRO_FILE: _macro(project)}


# ----------------------------------------------------------------------------- numbers and names


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConversionError(f"{what} must be a number, not {value!r}")
    return value


def _vector(values: Any, what: str) -> Vector:
    if not isinstance(values, Sequence) or len(values) != 3:
        raise ConversionError(f"{what} must be three numbers, not {values!r}")
    return (_number(values[0], what), _number(values[1], what), _number(values[2], what))


def _num(value: float) -> str:
    """A macro number as the editor wrote it (integers stay integers), without rounding noise."""
    if isinstance(value, int):
        return str(value)
    return repr(round(value, 12) + 0.0)


def _mm(value_cm: float) -> str:
    mm = round(value_cm * 10.0, 9) + 0.0
    return str(int(mm)) if mm.is_integer() else repr(mm)


def _angle(degrees: float) -> str:
    rounded = round(degrees, 9) + 0.0
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def _token(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or any(char.isspace() for char in value):
        raise ConversionError(f"{what} {value!r} must be a non-empty name without spaces")
    return value


def _pascal(name: Any) -> str:
    return "".join(part.capitalize() for part in str(name or "Figure").split("_"))


def _banner(title: str) -> list[str]:
    return ["#" * 42, f" {title} ".center(42, "#"), "#" * 42]


# ----------------------------------------------------------------------------- rotations


@dataclass(frozen=True)
class _Placement:
    """A position in cm and an editor rotation: degrees about X, then Y, then Z (Rx·Ry·Rz)."""

    position: Vector = (0.0, 0.0, 0.0)
    rotation: Vector = (0.0, 0.0, 0.0)

    @classmethod
    def of(cls, geometry: Mapping[str, Any], what: str) -> _Placement:
        position = _vector(geometry.get("position", (0, 0, 0)), f"{what} position")
        rotation = _vector(geometry.get("rotation", (0, 0, 0)), f"{what} rotation")
        return cls(position, rotation)

    def shifted(self, offset: Vector) -> _Placement:
        moved = (
            self.position[0] - offset[0],
            self.position[1] - offset[1],
            self.position[2] - offset[2],
        )
        return _Placement(moved, self.rotation)

    @property
    def moved(self) -> bool:
        return any(abs(value) > _EPS for value in self.position)

    @property
    def rotated(self) -> bool:
        return any(abs(value) > _EPS for value in self.rotation)


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    def row(i: int) -> Vector:
        return (
            a[i][0] * b[0][0] + a[i][1] * b[1][0] + a[i][2] * b[2][0],
            a[i][0] * b[0][1] + a[i][1] * b[1][1] + a[i][2] * b[2][1],
            a[i][0] * b[0][2] + a[i][1] * b[1][2] + a[i][2] * b[2][2],
        )

    return row(0), row(1), row(2)


def _editor_matrix(degrees: Vector) -> Matrix:
    a, b, c = (math.radians(value) for value in degrees)
    rx = ((1.0, 0.0, 0.0), (0.0, math.cos(a), -math.sin(a)), (0.0, math.sin(a), math.cos(a)))
    ry = ((math.cos(b), 0.0, math.sin(b)), (0.0, 1.0, 0.0), (-math.sin(b), 0.0, math.cos(b)))
    rz = ((math.cos(c), -math.sin(c), 0.0), (math.sin(c), math.cos(c), 0.0), (0.0, 0.0, 1.0))
    return _matmul(_matmul(rx, ry), rz)


def _physvol_angles(degrees: Vector) -> Vector:
    """GDML physvol angles: Geant4 places with the inverse of Rz·Ry·Rx, so negated angles give
    the editor's Rx·Ry·Rz."""
    return (-degrees[0], -degrees[1], -degrees[2])


def _boolean_angles(degrees: Vector) -> Vector:
    """GDML boolean (and first-solid) angles: Geant4 applies Rz·Ry·Rx itself, not its inverse."""
    m = _editor_matrix(degrees)
    cos_b = math.hypot(m[0][0], m[1][0])
    if cos_b > 1e-10:
        angles = (
            math.atan2(m[2][1], m[2][2]),
            math.atan2(-m[2][0], cos_b),
            math.atan2(m[1][0], m[0][0]),
        )
    else:
        angles = (math.atan2(-m[1][2], m[1][1]), math.atan2(-m[2][0], cos_b), 0.0)
    return (math.degrees(angles[0]), math.degrees(angles[1]), math.degrees(angles[2]))


# ----------------------------------------------------------------------------- materials


def _nist_name(material: Mapping[str, Any], what: str) -> str:
    """The Geant4 material for an editor material: its own ``geant4_name`` or its ICRU number."""
    given = material.get("geant4_name")
    if given:
        return _token(given, f"{what}: Geant4 material")
    icru = material.get("icru")
    label = f"{what}: material {material.get('name', '?')!r} (ICRU {icru!r})"
    if isinstance(icru, bool) or not isinstance(icru, int):
        raise ConversionError(f"{label} has no ICRU number")
    if icru == 0:
        return _BLACK_HOLE
    if icru == 1000:
        return _VACUUM
    if 1 <= icru <= len(_ELEMENTS):
        return f"G4_{_ELEMENTS[icru - 1]}"
    index = icru - _FIRST_COMPOUND
    if 0 <= index < len(_COMPOUNDS) and _COMPOUNDS[index] != "-":
        return f"G4_{_COMPOUNDS[index]}"
    raise ConversionError(f"{label} has no Geant4 NIST equivalent")


# ----------------------------------------------------------------------------- GDML


class _Names:
    """Unique names per kind, numbered from the second use on (``solidBox``, ``solidBox2``)."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        self._used[base] = self._used.get(base, 0) + 1
        count = self._used[base]
        return base if count == 1 else f"{base}{count}"


class _Gdml:
    """The GDML document under construction: materials, solids and volumes."""

    def __init__(self) -> None:
        self.root = ET.Element(
            "gdml",
            {
                "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
                "xsi:noNamespaceSchemaLocation": _XSD,
            },
        )
        ET.SubElement(self.root, "define")
        self._materials = ET.SubElement(self.root, "materials")
        self._solids = ET.SubElement(self.root, "solids")
        self._structure = ET.SubElement(self.root, "structure")
        self._solid_name, self._logic_name, self._phys_name = _Names(), _Names(), _Names()
        self._defined: set[str] = set()

    def material(self, name: str) -> str:
        if name == _BLACK_HOLE and name not in self._defined:
            # what the reference converter defines: lead so dense that nothing leaves it
            self._defined.add(name)
            hole = ET.SubElement(self._materials, "material", {"name": name, "state": "solid"})
            ET.SubElement(hole, "T", {"unit": "K", "value": "293.15"})
            ET.SubElement(hole, "MEE", {"unit": "eV", "value": "823"})
            ET.SubElement(hole, "D", {"unit": "g/cm3", "value": "1e+8"})
            ET.SubElement(hole, "fraction", {"n": "1", "ref": "G4_Pb"})
        return name

    def with_density(self, base: str, density: Any, what: str) -> str:
        value = _number(density, f"{what}: density")
        if value <= 0 or base in (_BLACK_HOLE, _VACUUM):
            raise ConversionError(f"{what}: density {density!r} cannot be set for {base}")
        name = f"{base}_density_{_num(value)}"
        if name not in self._defined:
            self._defined.add(name)
            custom = ET.SubElement(self._materials, "material", {"name": name})
            ET.SubElement(custom, "D", {"unit": "g/cm3", "value": _num(value)})
            ET.SubElement(custom, "fraction", {"n": "1", "ref": base})
        return name

    def primitive(
        self, geometry: Mapping[str, Any], base: str, what: str, *, filled: bool = False
    ) -> str:
        """A box, tube or sphere solid for the editor geometry (sizes in cm, written in mm)."""
        kind, params = geometry.get("geometryType"), geometry.get("parameters") or {}

        def size(key: str) -> float:
            value = _number(params.get(key), f"{what}: {key}")
            if value <= 0:
                raise ConversionError(f"{what}: {key} must be positive, not {value!r}")
            return value

        name = self._solid_name(base)
        if kind == "BoxGeometry":
            sides = {"x": _mm(size("width")), "y": _mm(size("height")), "z": _mm(size("depth"))}
            ET.SubElement(self._solids, "box", {"name": name, **sides, "lunit": "mm"})
        elif kind in ("HollowCylinderGeometry", "CylinderGeometry"):
            outer, depth = size("radius"), size("depth")
            inner = 0.0 if filled else _number(params.get("innerRadius", 0), f"{what}: innerRadius")
            if not 0 <= inner < outer:
                raise ConversionError(f"{what}: inner radius {inner!r} must lie in [0, {outer!r})")
            tube = {"name": name, "rmin": _mm(inner), "rmax": _mm(outer), "z": _mm(depth)}
            angles = {"startphi": "0", "deltaphi": "360", "aunit": "deg", "lunit": "mm"}
            ET.SubElement(self._solids, "tube", {**tube, **angles})
        elif kind == "SphereGeometry":
            sphere = {"name": name, "rmin": "0", "rmax": _mm(size("radius"))}
            angles = {"startphi": "0", "deltaphi": "360", "starttheta": "0", "deltatheta": "180"}
            ET.SubElement(
                self._solids, "sphere", {**sphere, **angles, "aunit": "deg", "lunit": "mm"}
            )
        else:
            raise ConversionError(f"{what}: geometry type {kind!r} is not supported by Geant4")
        return name

    def enclosing_box(self, base: str, half: Vector) -> str:
        name = self._solid_name(base)
        sides = {axis: _mm(2 * extent) for axis, extent in zip("xyz", half, strict=True)}
        ET.SubElement(self._solids, "box", {"name": name, **sides, "lunit": "mm"})
        return name

    def boolean(self, mode: str, base: str, first: _Part, second: _Part) -> _Part:
        """``first mode second``, both placed in the frame of the new solid."""
        name = self._solid_name(base)
        element = ET.SubElement(self._solids, mode, {"name": name})
        ET.SubElement(element, "first", {"ref": first.solid})
        ET.SubElement(element, "second", {"ref": second.solid})
        for prefix, suffix, placement in (
            ("", "", second.placement),
            ("first", "f", first.placement),
        ):
            if placement.moved:
                self._position(
                    element, f"{prefix}position", f"{name}_{suffix}pos", placement.position
                )
            if placement.rotated:
                angles = _boolean_angles(placement.rotation)
                self._rotation(element, f"{prefix}rotation", f"{name}_{suffix}rot", angles)
        return _Part(name, _Placement())

    def volume(self, base: str, material: str, solid: str) -> ET.Element:
        volume = ET.SubElement(self._structure, "volume", {"name": self._logic_name(base)})
        ET.SubElement(volume, "materialref", {"ref": material})
        ET.SubElement(volume, "solidref", {"ref": solid})
        return volume

    def place(
        self, mother: ET.Element, daughter: ET.Element, base: str, placement: _Placement
    ) -> None:
        name = self._phys_name(base)
        physvol = ET.SubElement(mother, "physvol", {"copynumber": "1", "name": name})
        ET.SubElement(physvol, "volumeref", {"ref": daughter.attrib["name"]})
        if placement.moved:
            self._position(physvol, "position", f"{name}_pos", placement.position)
        if placement.rotated:
            self._rotation(physvol, "rotation", f"{name}_rot", _physvol_angles(placement.rotation))

    def text(self, world: ET.Element) -> str:
        setup = ET.SubElement(self.root, "setup", {"name": "Default", "version": "1.0"})
        ET.SubElement(setup, "world", {"ref": world.attrib["name"]})
        return "\n".join([_XML_HEADER, *_xml_lines(self.root, 0)]) + "\n"

    @staticmethod
    def _position(parent: ET.Element, tag: str, name: str, position: Vector) -> None:
        x, y, z = (_mm(value) for value in position)
        ET.SubElement(parent, tag, {"name": name, "unit": "mm", "x": x, "y": y, "z": z})

    @staticmethod
    def _rotation(parent: ET.Element, tag: str, name: str, angles: Vector) -> None:
        x, y, z = (_angle(value) for value in angles)
        ET.SubElement(parent, tag, {"name": name, "unit": "deg", "x": x, "y": y, "z": z})


@dataclass(frozen=True)
class _Part:
    """A solid and where it sits in the frame it is used in."""

    solid: str
    placement: _Placement


def _xml_lines(element: ET.Element, depth: int) -> Iterator[str]:
    pad = "  " * depth
    attributes = "".join(
        f' {k}="{escape(v, {chr(34): "&quot;"})}"' for k, v in element.attrib.items()
    )
    children = list(element)
    if not children:
        yield f"{pad}<{element.tag}{attributes}/>"
        return
    yield f"{pad}<{element.tag}{attributes}>"
    for child in children:
        yield from _xml_lines(child, depth + 1)
    yield f"{pad}</{element.tag}>"


def _gdml(project: Mapping[str, Any]) -> str:
    gdml = _Gdml()
    figures = (project.get("figureManager") or {}).get("figures") or []
    if (project.get("zoneManager") or {}).get("zones"):
        world = _zone_world(gdml, project, figures)
    elif figures:
        world = _figure_world(gdml, figures)
    else:  # an empty project: the reference's 1 m vacuum box
        solid = gdml.enclosing_box("solidWorld", (50.0, 50.0, 50.0))
        world = gdml.volume("logicWorld", _VACUUM, solid)
    return gdml.text(world)


def _figure_world(gdml: _Gdml, figures: Sequence[Mapping[str, Any]]) -> ET.Element:
    """A Geant4 project: the first figure is the world, its children nest inside it."""
    world, *others = figures
    if others:
        raise ConversionError(
            f"figure {others[0].get('name')!r} lies outside the world figure {world.get('name')!r}"
        )
    what = f"world figure {world.get('name')!r}"
    placement = _Placement.of(world.get("geometryData") or {}, what)
    if placement.moved or placement.rotated:
        raise ConversionError(f"{what} must sit at the origin, unrotated")
    return _figure_volume(gdml, world)


def _figure_volume(gdml: _Gdml, figure: Mapping[str, Any]) -> ET.Element:
    what = f"figure {figure.get('name')!r}"
    children = [(child, _figure_volume(gdml, child)) for child in figure.get("children") or []]
    geometry = figure.get("geometryData") or {}
    solid = gdml.primitive(geometry, f"solid{_pascal(figure.get('name'))}", what)
    material = figure.get("simulationMaterial")
    if not isinstance(material, Mapping):
        raise ConversionError(f"{what} has no material")
    volume = gdml.volume(
        f"logic{_pascal(figure.get('name'))}", gdml.material(_nist_name(material, what)), solid
    )
    for child, child_volume in children:
        child_what = f"figure {child.get('name')!r}"
        placement = _Placement.of(child.get("geometryData") or {}, child_what)
        gdml.place(volume, child_volume, f"phys{_pascal(child.get('name'))}", placement)
    return volume


def _zone_world(
    gdml: _Gdml, project: Mapping[str, Any], figures: Sequence[Mapping[str, Any]]
) -> ET.Element:
    """A zone project: each zone a (boolean) solid placed in the world zone."""
    zones = project["zoneManager"]
    world_zone = zones.get("worldZone")
    if not isinstance(world_zone, Mapping):
        raise ConversionError("the project has zones but no world zone")
    by_uuid = {figure["uuid"]: figure for figure in figures}
    for figure in figures:
        if figure.get("children"):
            raise ConversionError(
                f"figure {figure.get('name')!r}: nested figures cannot be used in zones"
            )
    materials = {
        item["uuid"]: item for item in (project.get("materialManager") or {}).get("materials") or []
    }
    geometry = world_zone.get("geometryData") or {}
    world_place = _Placement.of(geometry, "world zone")
    if world_place.rotated:
        raise ConversionError("world zone: a rotated world zone is not supported")

    solids: dict[str, str] = {}
    placed: list[tuple[str, ET.Element, _Placement]] = []
    for zone in zones["zones"]:
        what = f"zone {zone.get('name')!r}"
        part = _zone_part(gdml, zone, by_uuid, solids, world_place.position, what)
        material = gdml.material(_nist_name(_zone_material(zone, materials, what), what))
        density = (zone.get("materialPropertiesOverrides") or {}).get("density")
        if density is not None:
            material = gdml.with_density(material, density, what)
        volume = gdml.volume(f"logic{_pascal(zone.get('name'))}", material, part.solid)
        placed.append((f"phys{_pascal(zone.get('name'))}", volume, part.placement))

    world_material = gdml.material(
        _nist_name(_zone_material(world_zone, materials, "world zone"), "world zone")
    )
    shifted = world_place.moved
    solid = gdml.primitive(
        geometry, "solidWorldZone" if shifted else "solidWorld", "world zone", filled=True
    )
    zone_world = gdml.volume("logicWorldZone" if shifted else "logicWorld", world_material, solid)
    for name, volume, placement in placed:
        gdml.place(zone_world, volume, name, placement)
    if not shifted:
        return zone_world
    # Geant4's world sits at the origin: wrap the shifted world zone in a black-hole box.
    (ox, oy, oz), (hx, hy, hz) = world_place.position, _half_extents(geometry)
    box = gdml.enclosing_box("solidWorld", (abs(ox) + hx, abs(oy) + hy, abs(oz) + hz))
    world = gdml.volume("logicWorld", gdml.material(_BLACK_HOLE), box)
    gdml.place(world, zone_world, "physWorldZone", _Placement(world_place.position))
    return world


def _zone_material(
    zone: Mapping[str, Any], materials: Mapping[Any, Any], what: str
) -> Mapping[str, Any]:
    material = zone.get("customMaterial") or materials.get(zone.get("materialUuid"))
    if not isinstance(material, Mapping):
        raise ConversionError(
            f"{what}: material {zone.get('materialUuid')!r} is not in the project"
        )
    return material


def _zone_part(
    gdml: _Gdml,
    zone: Mapping[str, Any],
    figures: Mapping[str, Mapping[str, Any]],
    solids: dict[str, str],
    origin: Vector,
    what: str,
) -> _Part:
    """The zone's solid: a union of rows, each row figures combined left to right."""
    if zone.get("type", "BooleanZone") != "BooleanZone":
        raise ConversionError(f"{what}: zone type {zone.get('type')!r} is not supported")
    rows = zone.get("unionOperations") or []
    if not rows or not all(rows):
        raise ConversionError(f"{what} uses no figure")
    base = f"solid{_pascal(zone.get('name'))}"
    result: _Part | None = None
    for row in rows:
        part: _Part | None = None
        for step in row:
            mode, figure = step.get("mode"), figures.get(step.get("objectUuid"))
            if figure is None:
                raise ConversionError(f"{what} uses a figure that is not in the project")
            if mode not in _BOOLEANS:
                raise ConversionError(f"{what}: boolean operation {mode!r} is not supported")
            if part is None and mode != "union":
                raise ConversionError(f"{what} begins with a {mode} instead of a union")
            figure_what = f"figure {figure.get('name')!r}"
            if figure["uuid"] not in solids:
                geometry = figure.get("geometryData") or {}
                solids[figure["uuid"]] = gdml.primitive(
                    geometry, f"solid{_pascal(figure.get('name'))}", figure_what
                )
            placement = _Placement.of(figure.get("geometryData") or {}, figure_what).shifted(origin)
            operand = _Part(solids[figure["uuid"]], placement)
            part = operand if part is None else gdml.boolean(mode, base, part, operand)
        assert part is not None
        result = part if result is None else gdml.boolean("union", base, result, part)
    assert result is not None
    return result


def _half_extents(geometry: Mapping[str, Any]) -> Vector:
    params = geometry.get("parameters") or {}
    if geometry.get("geometryType") == "BoxGeometry":
        return (params["width"] / 2, params["height"] / 2, params["depth"] / 2)
    if geometry.get("geometryType") == "SphereGeometry":
        return (params["radius"], params["radius"], params["radius"])
    return (params["radius"], params["radius"], params["depth"] / 2)


# ----------------------------------------------------------------------------- macro


def _macro(project: Mapping[str, Any]) -> str:
    _refuse_unsupported_extras(project)
    particles = _GEANT4_PARTICLES if _is_geant4_project(project) else _COMMON_PARTICLES
    beam = project["beam"]
    meshes, histograms, dumps = _scoring(project, particles)
    return "\n".join(
        [
            "/run/initialize",
            "",
            *_banner("Particle Source definition"),
            "",
            *_source(beam, particles),
            "",
            *_banner("Scoring"),
            "",
            *meshes,
            *histograms,
            "",
            *_banner("Run"),
            "",
            f"/run/beamOn {count(beam.get('numberOfParticles'), 'beam numberOfParticles')}",
            "",
            *_banner("Collect results"),
            "",
            *dumps,
        ]
    )


def _is_geant4_project(project: Mapping[str, Any]) -> bool:
    simulator = (project.get("project") or {}).get("simulator")
    if simulator:
        return str(simulator).lower() == "geant4"
    figures = (project.get("figureManager") or {}).get("figures") or []
    return any(str(figure.get("type", "")).startswith("Geant4") for figure in figures)


def _refuse_unsupported_extras(project: Mapping[str, Any]) -> None:
    special = project.get("specialComponentsManager") or {}
    for key, value in special.items():
        if key not in ("uuid", "name", "type", "metadata") and value:
            raise ConversionError(f"special component {key!r} is not supported by Geant4")
    if (project.get("physic") or {}).get("enableNuclearReactions") is False:
        raise ConversionError("physics: disabling nuclear reactions is not supported by Geant4")


def _source(beam: Mapping[str, Any], particles: Mapping[int, str]) -> list[str]:
    """GPS commands for the beam: position, particle, spot shape, direction, Gaussian energy."""
    source_type = beam.get("sourceType", "simple")
    if source_type != "simple":
        raise ConversionError(f"beam source type {source_type!r} is not supported by Geant4")
    sad = beam.get("sad") or {}
    if sad.get("type", "none") != "none":
        raise ConversionError(f"beam SAD type {sad.get('type')!r} is not supported by Geant4")
    divergence = beam.get("divergence") or {}
    if any(_number(divergence.get(axis, 0), "beam divergence") != 0 for axis in ("x", "y")):
        raise ConversionError("beam divergence is not supported by Geant4")
    x, y, z = _vector(beam.get("position", (0, 0, 0)), "beam position")
    direction = _vector(beam.get("direction", (0, 0, 1)), "beam direction")
    if not any(direction):
        raise ConversionError("beam direction must not be the zero vector")
    particle_lines, nucleons = _particle(beam.get("particle") or {}, particles)
    unit = beam.get("energyUnit", "MeV")
    if unit == "MeV":
        scale = 1
    elif unit == "MeV/nucl" and nucleons:
        scale = nucleons
    else:
        raise ConversionError(f"beam energy unit {unit!r} is not supported for this particle")
    spread = _number(beam.get("energySpread", 0), "beam energySpread")
    if spread < 0:
        raise ConversionError(f"beam energySpread {spread!r}: a flat spectrum is not supported")
    energy = _number(beam.get("energy"), "beam energy")
    high = _number(beam.get("energyHighCutoff", 1000), "beam energyHighCutoff")
    low = _number(beam.get("energyLowCutoff", 0), "beam energyLowCutoff")
    return [
        "/gps/verbose 0",
        f"/gps/position {_num(x)} {_num(y)} {_num(z)} cm",
        *particle_lines,
        *_spot(beam.get("sigma") or {}),
        "/gps/direction " + " ".join(_num(value) for value in direction),
        "/gps/ene/type Gauss",
        f"/gps/ene/mono {_num(energy * scale)} MeV",
        f"/gps/ene/sigma {_num(spread * scale)} MeV",
        f"/gps/ene/max {_num(high * scale)} MeV",
        f"/gps/ene/min {_num(low * scale)} MeV",
    ]


def _particle(particle: Mapping[str, Any], particles: Mapping[int, str]) -> tuple[list[str], int]:
    """The GPS particle commands and the nucleon count (0 where MeV/nucl makes no sense)."""
    ident: Any = particle.get("id")
    if ident in particles:
        name = particles[ident]
        return [f"/gps/particle {name}"], _NUCLEONS.get(name, 0)
    if ident == _HEAVY_ION or (particles is _GEANT4_PARTICLES and ident == _GEANT4_CARBON_12):
        if ident == _GEANT4_CARBON_12:
            charge, mass = 6, 12
        else:
            charge = count(particle.get("z"), "beam ion Z")
            mass = count(particle.get("a"), "beam ion A")
        # fully stripped; the reference's charge 0 would leave the ion without any EM interaction
        return ["/gps/particle ion", f"/gps/ion {charge} {mass} {charge} 0"], mass
    raise ConversionError(
        f"beam particle {particle.get('name')!r} (id {ident!r}) is not supported by Geant4"
    )


def _spot(sigma: Mapping[str, Any]) -> list[str]:
    shape = sigma.get("type", "Gaussian")
    x = _number(sigma.get("x", 0), "beam sigma x")
    y = _number(sigma.get("y", 0), "beam sigma y")
    if shape == "Gaussian":
        lines = ["/gps/pos/type Beam"]
        lines += [
            f"/gps/pos/sigma_{axis} {_num(value)} cm"
            for axis, value in (("x", x), ("y", y))
            if value > 0
        ]
        return lines
    if shape == "Flat square":
        lines = ["/gps/pos/type Plane", "/gps/pos/shape Rectangle"]
        return lines + [
            f"/gps/pos/half{axis} {_num(value)} cm"
            for axis, value in (("x", x), ("y", y))
            if value > 0
        ]
    if shape == "Flat circular":  # y is the radius, as for SHIELD-HIT12A
        return ["/gps/pos/type Plane", "/gps/pos/shape Circle"] + (
            [f"/gps/pos/radius {_num(y)} cm"] if y > 0 else []
        )
    raise ConversionError(f"beam sigma type {shape!r} is not supported by Geant4")


def _scoring(
    project: Mapping[str, Any], particles: Mapping[int, str]
) -> tuple[list[str], list[str], list[str]]:
    """Mesh (or probe) blocks per detector, spectrum histograms, and the dump commands."""
    detectors = {
        item["uuid"]: item for item in (project.get("detectorManager") or {}).get("detectors") or []
    }
    manager = project.get("scoringManager") or {}
    filters = {item["uuid"]: item for item in manager.get("filters") or []}
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    dumps: list[str] = []
    for output in manager.get("outputs") or []:
        what = f"output {output.get('name')!r}"
        if output.get("trace"):
            raise ConversionError(f"{what}: particle tracing is not supported by Geant4")
        detector = detectors.get(output.get("detectorUuid"))
        if detector is None:
            raise ConversionError(f"{what} scores in a detector that is not in the project")
        name = _token(detector.get("name"), "detector name")
        quantities = list(output.get("quantities") or [])
        grouped.setdefault(detector["uuid"], []).extend(quantities)
        for quantity in quantities:
            label = _token(quantity.get("name"), f"{what}: quantity name")
            dumps.append(f"/score/dumpQuantityToFile {name} {label} {name}_{label}.txt")
    meshes: list[str] = []
    spectra: list[tuple[str, Mapping[str, Any]]] = []
    for uuid, quantities in grouped.items():
        detector = detectors[uuid]
        meshes += _mesh(detector, quantities)
        seen: set[str] = set()
        for quantity in quantities:
            meshes += _quantity(quantity, filters, particles, seen, detector["name"])
            if quantity.get("keyword") == _SPECTRUM:
                spectra.append((detector["name"], quantity))
        meshes += ["/score/close", ""]
    histograms: list[str] = []
    for index, (detector_name, quantity) in enumerate(spectra):
        name = quantity["name"]
        bins = count(quantity.get("histogramNBins", 1), f"quantity {name!r} histogram bins")
        low = _number(quantity.get("histogramMin", 0), f"quantity {name!r} histogram minimum")
        high = _number(quantity.get("histogramMax", 1), f"quantity {name!r} histogram maximum")
        unit = quantity.get("histogramUnit", "MeV")
        scale, scheme = (
            quantity.get("histogramXScale", "none"),
            quantity.get("histogramXBinScheme", "linear"),
        )
        histograms.append(
            f"/analysis/h1/create {name}_{index} {name}_differential_{index} {bins} "
            f"{_num(low)} {_num(high)} {unit} {scale} {scheme}"
        )
        histograms.append(f"/score/fill1D {index} {detector_name} {name}")
    return meshes, histograms, dumps


def _mesh(detector: Mapping[str, Any], quantities: Sequence[Mapping[str, Any]]) -> list[str]:
    name = detector["name"]
    what = f"detector {name!r}"
    geometry = detector.get("geometryData") or {}
    kind, params = geometry.get("geometryType"), geometry.get("parameters") or {}
    if kind not in ("Cyl", "Mesh"):
        raise ConversionError(f"{what}: geometry type {kind!r} cannot be a Geant4 scoring mesh")
    placement = _Placement.of(geometry, what)
    x, y, z = (_num(value) for value in placement.position)

    def size(key: str) -> float:
        value = _number(params.get(key), f"{what}: {key}")
        if value <= 0:
            raise ConversionError(f"{what}: {key} must be positive, not {value!r}")
        return value

    if any(quantity.get("keyword") == _SPECTRUM for quantity in quantities):
        if placement.rotated:
            raise ConversionError(f"{what}: a rotated energy-spectrum probe is not supported")
        # the reference's probe: a cube of half the radius, or of half the largest side
        extent = (
            size("radius") if kind == "Cyl" else max(size("width"), size("height"), size("depth"))
        )
        return [
            f"/score/create/probe {name} {_num(extent / 2)} cm",
            f"/score/probe/locate {x} {y} {z} cm",
        ]
    rotations = [
        f"/score/mesh/rotate/rotate{axis} {_angle(angle)} deg"
        for axis, angle in zip("XYZ", _physvol_angles(placement.rotation), strict=True)
        if abs(angle) > _EPS
    ]
    if kind == "Cyl":
        inner = _number(params.get("innerRadius", 0), f"{what}: innerRadius")
        radius, depth = size("radius"), size("depth")
        if not 0 <= inner < radius:
            raise ConversionError(f"{what}: inner radius {inner!r} must lie in [0, {radius!r})")
        counts = [
            count(params.get(key), f"{what}: {key}") for key in ("radialSegments", "zSegments")
        ]
        return [
            f"/score/create/cylinderMesh {name}",
            f"/score/mesh/translate/xyz {x} {y} {z} cm",
            *rotations,
            f"/score/mesh/cylinderSize {_num(radius)} {_num(depth / 2)} cm",
            *([f"/score/mesh/cylinderRMin {_num(inner)} cm"] if inner > 0 else []),
            f"/score/mesh/nBin {counts[0]} {counts[1]} 1",
        ]
    halves = (_num(size(key) / 2) for key in ("width", "height", "depth"))
    counts = [
        count(params.get(key), f"{what}: {key}") for key in ("xSegments", "ySegments", "zSegments")
    ]
    return [
        f"/score/create/boxMesh {name}",
        f"/score/mesh/translate/xyz {x} {y} {z} cm",
        *rotations,
        "/score/mesh/boxSize " + " ".join(halves) + " cm",
        f"/score/mesh/nBin {counts[0]} {counts[1]} {counts[2]}",
    ]


def _quantity(
    quantity: Mapping[str, Any],
    filters: Mapping[str, Mapping[str, Any]],
    particles: Mapping[int, str],
    seen: set[str],
    detector: str,
) -> list[str]:
    name, keyword = quantity["name"], quantity.get("keyword")
    what = f"detector {detector!r}, quantity {name!r}"
    if keyword not in _QUANTITIES:
        raise ConversionError(f"{what}: keyword {keyword!r} has no Geant4 scorer")
    if name in seen:
        raise ConversionError(f"{what}: a detector cannot score two quantities of one name")
    seen.add(name)
    for key in ("primaries", "materialUuid", "customMaterial"):
        if quantity.get(key) is not None:
            raise ConversionError(f"{what}: {key} is not supported by Geant4")
    if quantity.get("modifiers"):
        raise ConversionError(f"{what}: differential modifiers are not supported by Geant4")
    if quantity.get("rescale", 1) != 1:
        raise ConversionError(f"{what}: rescaling is not supported by Geant4")
    lines = [f"/score/quantity/{_QUANTITIES[keyword]} {name}"]
    if quantity.get("filter"):
        scoring_filter = filters.get(quantity["filter"])
        if scoring_filter is None:
            raise ConversionError(f"{what} uses a filter that is not in the project")
        lines.append(_filter(scoring_filter, particles))
    return lines


def _filter(scoring_filter: Mapping[str, Any], particles: Mapping[int, str]) -> str:
    name = _token(scoring_filter.get("name"), "filter name")
    what = f"filter {name!r}"
    if "filterType" not in scoring_filter:  # the FLUKA (one particle) or SHIELD-HIT12A (rules) form
        if isinstance(scoring_filter.get("particle"), Mapping):
            names = [_filtered_particle(scoring_filter["particle"], particles, what)]
        else:
            names = _rule_particles(scoring_filter, what)
        return f"/score/filter/particle {name} {' '.join(names)}"
    kind, data = scoring_filter["filterType"], scoring_filter.get("data") or {}
    if kind in ("charged", "neutral"):
        return f"/score/filter/{kind} {name}"
    if kind not in ("particle", "kineticEnergy", "particleWithKineticEnergy"):
        raise ConversionError(f"{what}: filter type {kind!r} is not supported by Geant4")
    words = [f"/score/filter/{kind}", name]
    if kind != "particle":
        unit = data.get("kineticEnergyUnit", "MeV")
        if unit not in _ENERGY_UNITS:
            raise ConversionError(f"{what}: energy unit {unit!r} is not supported")
        low = _number(data.get("kineticEnergyLow"), f"{what}: kineticEnergyLow")
        high = _number(data.get("kineticEnergyHigh"), f"{what}: kineticEnergyHigh")
        words += [_num(low), _num(high), unit]
    if kind != "kineticEnergy":
        chosen = data.get("particleTypes") or []
        if not chosen:
            raise ConversionError(f"{what} selects no particle")
        words += [_filtered_particle(item, particles, what) for item in chosen]
    return " ".join(words)


def _filtered_particle(item: Mapping[str, Any], particles: Mapping[int, str], what: str) -> str:
    ident: Any = item.get("id")
    if ident not in particles:
        raise ConversionError(f"{what}: particle {item.get('name')!r} cannot be filtered in Geant4")
    return particles[ident]


def _rule_particles(scoring_filter: Mapping[str, Any], what: str) -> list[str]:
    """SHIELD-HIT12A-style rules, as far as they name particles: Z and A equalities."""
    wanted: dict[str, int] = {}
    for rule in scoring_filter.get("rules") or []:
        keyword, operator = rule.get("keyword"), rule.get("operator")
        if keyword not in ("Z", "A") or operator not in ("==", "="):
            raise ConversionError(
                f"{what}: rule {keyword} {operator} {rule.get('value')} has no Geant4 filter"
            )
        wanted[keyword] = rule.get("value")
    names = [
        name
        for name, (charge, mass) in _CHARGE_MASS.items()
        if wanted.get("Z", charge) == charge and wanted.get("A", mass) == mass
    ]
    if not wanted or not names:
        raise ConversionError(f"{what}: its rules name no particle Geant4 can filter")
    return names
