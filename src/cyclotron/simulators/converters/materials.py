"""The editor's material library: the density of each ICRU material, and how a zone's
material and density are read from a project.

SHIELD-HIT12A gives every ICRU material (1–98 the elements by Z, 99–278 the compounds of ICRU
37 / NIST) a density of its own, and the editor lists the same values; a project's material
list repeats them, but an export may carry a stale one (AIR, ICRU 104, at 1.0 g/cm³). Every
engine therefore takes the library's density unless the project overrides it, as SHIELD-HIT12A
does with ``mat.dat``: a zone's ``materialPropertiesOverrides.density``, or its
``customMaterial`` (the editor writes one, a copy of the material with a new uuid the zone
then names, when a user changes a zone's density).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cyclotron.simulators.converters import ConversionError
from cyclotron.simulators.converters.values import number

__all__ = ["ZoneMaterial", "library_density", "sanitized_name", "zone_material"]

# g/cm³ of ICRU materials 1, 2, … 278, as SHIELD-HIT12A and the editor have them.
_DENSITIES = (
    8.3748e-05, 0.000166322, 0.534, 1.848, 2.37, 2.0, 0.00116528, 0.00133151, 0.00158029,
    0.000838505,  # 1–10
    0.971, 1.74, 2.6989, 2.33, 2.2, 2.0, 0.00299473, 0.00166201, 0.862, 1.55,  # 11–20
    2.989, 4.54, 6.11, 7.18, 7.44, 7.874, 8.9, 8.902, 8.96, 7.133,  # 21–30
    5.904, 5.323, 5.73, 4.5, 0.00707218, 0.00347832, 1.532, 2.54, 4.469, 6.506,  # 31–40
    8.57, 10.22, 11.5, 12.41, 12.41, 12.02, 10.5, 8.65, 7.31, 7.31,  # 41–50
    6.691, 6.24, 4.93, 0.00548536, 1.873, 3.5, 6.154, 6.657, 6.71, 6.9,  # 51–60
    7.22, 7.46, 5.243, 7.9004, 8.229, 8.55, 8.795, 9.066, 9.321, 6.73,  # 61–70
    9.84, 13.31, 16.654, 19.3, 21.02, 22.57, 22.42, 21.45, 19.32, 13.546,  # 71–80
    11.72, 11.35, 9.747, 9.32, 9.32, 0.00906618, 1.0, 5.0, 10.07, 11.72,  # 81–90
    15.37, 18.95, 20.25, 19.84, 13.67, 13.51, 14.0, 10.0, 1.127, 0.7899,  # 91–100
    0.0010967, 1.35, 0.92, 0.00120479, 1.42, 3.97, 1.1, 0.000826019, 1.0235, 1.283,  # 101–110
    1.45, 1.25, 4.89, 4.5, 0.87865, 3.01, 7.13, 1.06, 1.85, 1.85,  # 111–120
    2.52, 1.812, 1.03, 0.00249343, 0.8098, 1.76, 6.2, 7.9, 2.8, 3.18,  # 121–130
    3.3, 2.96, 6.062, 0.00184212, 1.594, 1.42, 1.2, 1.49, 1.03, 4.115,  # 131–140
    4.51, 1.1058, 1.4832, 2.3, 0.779, 1.3048, 1.2199, 1.2351, 0.71378, 0.9487,  # 141–150
    1.1014, 0.00125324, 0.7893, 1.13, 0.00117497, 1.1, 5.2, 7.15, 7.15, 1.024,  # 151–160
    1.12, 1.8, 0.95, 1.5, 1.8, 7.44, 5.31, 1.2914, 6.22, 2.4,  # 161–170
    2.23, 1.54, 1.46, 1.2613, 1.58, 2.32, 0.68376, 0.6603, 1.42, 6.28,  # 171–180
    5.86, 9.53, 1.178, 2.11, 2.635, 0.82, 3.494, 2.013, 2.44, 1.05,  # 181–190
    1.05, 2.958, 3.0, 3.58, 2.53, 6.36, 0.000667151, 0.7914, 0.99, 1.0,  # 191–200
    1.04, 1.04, 1.11, 1.07, 1.145, 1.19867, 0.00183094, 1.08, 1.14, 1.14,  # 201–210
    1.425, 0.7026, 0.93, 0.6262, 3.815, 1.032, 11.46, 1.17, 1.2, 1.3,  # 211–220
    0.94, 1.4, 1.19, 1.425, 0.9, 1.06, 2.2, 2.1, 1.19, 1.3,  # 221–230
    1.12, 1.3, 1.7, 1.76, 1.25, 3.13, 2.32, 0.00187939, 0.43, 0.8035,  # 231–240
    0.9819, 0.92, 0.92, 1.23, 2.32, 6.473, 5.56, 6.47, 6.01, 1.1,  # 241–250
    2.532, 3.667, 2.27, 2.261, 0.9707, 1.5805, 1.234, 1.04, 1.625, 7.004,  # 251–260
    1.0, 1.0, 0.00106409, 0.00182628, 4.26, 0.8669, 1.46, 1.07, 2.4, 11.28,  # 261–270
    13.63, 10.96, 1.323, 1.23, 1.8, 1.0, 0.000756182, 0.87,  # 271–278
)  # fmt: skip
LIBRARY_DENSITIES: dict[int, float] = dict(enumerate(_DENSITIES, start=1))


def library_density(icru: int) -> float | None:
    """The library's density of ICRU material ``icru`` (None for vacuum, the black hole and
    ids it does not list)."""
    return LIBRARY_DENSITIES.get(icru)


@dataclass(frozen=True)
class ZoneMaterial:
    """The material a zone is made of, as every engine reads it.

    ``density`` is what the engine uses: the project's override, else the library's, else
    (an id the library does not list) the material's own. ``overridden`` says whether the
    project set it, so that converters write it (``RHO``) only then. ``source`` is the
    material's own object (the listed material or the zone's ``customMaterial``).
    """

    uuid: str
    name: str
    icru: int
    density: float
    overridden: bool
    custom: bool
    source: Mapping[str, Any]


def zone_material(
    zone: Mapping[str, Any], listed: Mapping[str, Mapping[str, Any]], what: str
) -> ZoneMaterial:
    """The material of ``zone`` (a zone or the world zone) given the project's materials by
    uuid; ConversionError when it names neither a listed material nor its customMaterial."""
    uuid = str(zone.get("materialUuid", ""))
    custom = zone.get("customMaterial")
    custom = custom if isinstance(custom, Mapping) else None
    material = listed.get(uuid)
    if material is None and custom is not None and str(custom.get("uuid", uuid)) == uuid:
        material = custom
    if material is None:
        raise ConversionError(f"{what}: material {uuid!r} is not in the project")
    name = str(material.get("name", ""))
    icru = material.get("icru")
    if isinstance(icru, bool) or not isinstance(icru, int):
        raise ConversionError(f"material {name!r}: ICRU id must be an integer, not {icru!r}")
    overrides = zone.get("materialPropertiesOverrides") or {}
    is_custom = material is custom
    if "density" in overrides and overrides["density"] is not None:
        density, overridden = number(overrides["density"], f"{what} density"), True
    elif is_custom and "density" in material:
        density, overridden = number(material["density"], f"{what} density"), True
    else:
        library = library_density(icru)
        given = material.get("density", 1.0)
        density = library if library is not None else number(given, f"material {name!r} density")
        overridden = False
    return ZoneMaterial(
        str(material.get("uuid", uuid)), name, icru, density, overridden, is_custom, material
    )


def sanitized_name(material: Mapping[str, Any]) -> str:
    """The material's ``sanitizedName``, or one made from its name the way the editor makes
    it (a ``customMaterial`` may lack it): lower case, words joined by ``_``, no brackets or
    commas, ``/`` and ``\\`` as ``by``."""
    given = material.get("sanitizedName")
    if isinstance(given, str) and given:
        return given
    name = str(material.get("name", "")).lower().replace(" ", "_")
    for gone in "(),":
        name = name.replace(gone, "")
    return name.replace("/", "by").replace("\\", "by") or "material"
