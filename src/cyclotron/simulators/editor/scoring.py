"""Scoring transported steps into the project's outputs, as estimators (voxel doses:
``voxel_scoring``).

One estimator per editor output, named after it; page j is quantity j (spec/results.md §5, §7),
labelled as SHIELD-HIT12A's reader labels it (``DOSE`` in MeV/g/prim, ``FLUENCE`` in /cm^2/prim,
``AVG-ENERGY`` in MeV, ``DLET``/``TLET`` in MeV/cm; ``page_normalized`` 2 for per-primary sums,
3 for averages), axes with one bin dropped, values in Fortran order (§4).

Per step (``StepBatch``): Dose sums edep/ρ of the step's medium, divided by the bin volume and
the primaries (MeV/g/prim); Fluence sums track length / volume; Energy sums edep; AvgEnergy
(kinetic energy per nucleon) and AvgBeta are track-length-weighted means; tLET = Σ L·dl / Σ dl
and dLET = Σ L·edep / Σ edep, reported in MeV/cm (10 × keV/µm, as SHIELD-HIT12A writes them).
A filter keeps the steps whose Z, A, generation or energy pass its rules; a differential
modifier adds a bin axis over the step's kinetic energy (per particle, per nucleon or per amu).

Speed: a detector's bin index is computed once per batch and shared by its quantities; each
distinct (detector, filter, modifiers, weight) sum is one ``np.bincount``, and quantities that
need the same sum (Fluence and the denominator of AvgEnergy, say) share it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cyclotron.simulators.editor.geometry import DetectorBins
from cyclotron.simulators.editor.model import UnsupportedFeature
from cyclotron.simulators.editor.project import (
    EditorProject,
    Filter,
    Modifier,
    Output,
    Quantity,
)
from cyclotron.simulators.editor.records import FloatArray, StepBatch, VoxelGrid
from cyclotron.simulators.editor.support import output_problems

__all__ = [
    "SCORABLE_QUANTITIES",
    "Scoring",
]

KEV_PER_UM_IN_MEV_PER_CM = 10.0
AMU_MEV = 931.494


@dataclass(frozen=True)
class PageKind:
    """How SHIELD-HIT12A's reader labels a quantity's page, and how its value is formed."""

    name: str
    unit: str  # the detector unit, before "/prim"
    detector_type: int
    unit_ids: str | None
    normalized: int  # 2: per-primary sum, 3: average
    numerator: str  # the per-step weight summed
    denominator: str | None = None  # for averages
    per_volume: bool = False


PAGES = {
    "Dose": PageKind("DOSE", "MeV/g", 5, "[40 40 40]", 2, "dose", per_volume=True),
    "Fluence": PageKind("FLUENCE", "/cm^2", 2, "[14 14 14]", 2, "length", per_volume=True),
    "Energy": PageKind("ENERGY", "MeV", 1, None, 2, "edep"),
    "AvgEnergy": PageKind("AVG-ENERGY", "MeV", 8, "[70 70 70]", 3, "length_enuc", "length"),
    "AvgBeta": PageKind("AVG-BETA", "", 9, None, 3, "length_beta", "length"),
    "dLET": PageKind("DLET", "MeV/cm", 6, "[31 31 31]", 3, "edep_let", "edep"),
    "tLET": PageKind("TLET", "MeV/cm", 7, "[31 31 31]", 3, "length_let", "length"),
}
#: The editor quantities ``Scoring`` scores from steps.
SCORABLE_QUANTITIES = frozenset(PAGES)
DIFFERENTIAL_TYPES = {"E": 27, "ENUC": 28, "EAMU": 29}  # SHIELD-HIT12A's detector-type codes
DIFFERENTIAL_UNITS = {"E": "MeV", "ENUC": "MeV/nucl", "EAMU": "MeV/amu"}
GEOMETRY = {
    "Cyl": ("CYL", "cm;cm"),
    "Mesh": ("MSH", "cm;cm;cm"),
    "Zone": ("ZONE", ""),
    "All": ("ALL", ""),
}
OPERATIONS = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
    ">": np.greater, ">=": np.greater_equal,
}  # fmt: skip
DETECTOR_KINDS = {"Cyl", "Mesh", "Zone", "All"}
PROTONS = {("Z", "==", 1.0), ("A", "==", 1.0)}


@dataclass(frozen=True)
class _Sum:
    """One accumulated sum: a per-step weight over the bins of a detector, filter, modifiers."""

    detector: str
    filter: Filter | None
    modifiers: tuple[Modifier, ...]
    weight: str


class Scoring:
    """Accumulates ``StepBatch`` records into the project's outputs (see the module docstring)."""

    def __init__(self, project: EditorProject, grid: VoxelGrid) -> None:
        problems = list(output_problems(project.outputs, SCORABLE_QUANTITIES, DETECTOR_KINDS))
        if problems:
            raise UnsupportedFeature(f"{'; '.join(problems)}: not supported by the scoring")
        self._project = project
        self._bins = {
            o.detector.uuid: DetectorBins(project, o.detector, grid) for o in project.outputs
        }
        density = np.array([medium.density for medium in grid.media])[grid.zone_media]
        inverse = np.divide(1.0, density, out=np.zeros(len(density)), where=density > 0)
        self._inverse_density = np.append(inverse, 0.0)  # zone -1 (outside) picks the last
        sums: dict[_Sum, int] = {}
        self._pages: list[list[tuple[PageKind, int, int | None]]] = []
        for output in project.outputs:
            pages = []
            for quantity in output.quantities:
                kind = PAGES[quantity.keyword]
                numerator = sums.setdefault(_sum(output, quantity, kind.numerator), len(sums))
                denominator = None
                if kind.denominator is not None:
                    denominator = sums.setdefault(
                        _sum(output, quantity, kind.denominator), len(sums)
                    )
                pages.append((kind, numerator, denominator))
            self._pages.append(pages)
        self._totals = [np.zeros(self._bins[s.detector].size * _cells(s.modifiers)) for s in sums]
        # detector -> (filter, modifiers) -> [(sum, weight)]: each bin index computed once
        self._plan: dict[
            str, dict[tuple[Filter | None, tuple[Modifier, ...]], list[tuple[int, str]]]
        ] = {}
        for entry, number in sums.items():
            groups = self._plan.setdefault(entry.detector, {})
            groups.setdefault((entry.filter, entry.modifiers), []).append((number, entry.weight))

    def add(self, batch: StepBatch) -> None:
        """Score one batch of steps."""
        if len(batch) == 0:
            return
        steps = _Steps(batch, self._inverse_density)
        for detector, groups in self._plan.items():
            bins = self._bins[detector]
            index = bins.index(batch.x, batch.y, batch.z, batch.zone)
            inside: Rows = np.flatnonzero(index >= 0)
            if len(inside) == 0:
                continue
            cells = index[inside]
            if len(inside) == len(batch):
                inside, cells = None, index
            for (chosen, modifiers), sums in groups.items():
                rows, where = inside, cells
                if chosen is not None:
                    keep = _take(steps.passes(chosen), rows)
                    rows = np.flatnonzero(keep) if rows is None else rows[keep]
                    where = where[keep]
                if modifiers:
                    where, keep = _differential(where, bins.size, modifiers, steps, rows)
                    rows = np.flatnonzero(keep) if rows is None else rows[keep]
                    where = where[keep]
                for number, weight in sums:
                    total = self._totals[number]
                    total += np.bincount(where, _take(steps.weight(weight), rows), len(total))

    def estimators(self, primaries: int) -> list[dict[str, Any]]:
        """The outputs as estimators (spec/results.md), normalised to ``primaries``."""
        if primaries < 1:
            raise ValueError(f"primaries must be at least 1, not {primaries}")
        result = []
        for output, pages in zip(self._project.outputs, self._pages, strict=True):
            bins = self._bins[output.detector.uuid]
            built = [
                page_of(
                    j,
                    quantity,
                    kind,
                    self._values(kind, numerator, denominator, bins, primaries),
                    bins,
                )
                for j, (quantity, (kind, numerator, denominator)) in enumerate(
                    zip(output.quantities, pages, strict=True)
                )
            ]
            result.append(estimator_of(output, built, primaries))
        return result

    def _values(
        self,
        kind: PageKind,
        numerator: int,
        denominator: int | None,
        bins: DetectorBins,
        primaries: int,
    ) -> FloatArray:
        total = self._totals[numerator]
        if denominator is not None:
            weights = self._totals[denominator]
            scale = KEV_PER_UM_IN_MEV_PER_CM if kind.unit == "MeV/cm" else 1.0
            return np.divide(total * scale, weights, out=np.zeros(len(total)), where=weights > 0)
        values = total / primaries
        if kind.per_volume:
            volumes = np.broadcast_to(bins.volumes, (len(total) // bins.size, bins.size)).ravel()
            values = np.divide(values, volumes, out=np.zeros(len(total)), where=volumes > 0)
        return values


Rows = Any  # an index array of steps, or None for all of them


def _take(values: FloatArray, rows: Rows) -> FloatArray:
    return values if rows is None else values[rows]


def _sum(output: Output, quantity: Quantity, weight: str) -> _Sum:
    return _Sum(output.detector.uuid, quantity.filter, quantity.modifiers, weight)


def _cells(modifiers: Sequence[Modifier]) -> int:
    return math.prod(modifier.bins for modifier in modifiers)


class _Steps:
    """What a batch's steps give the sums, each array computed once, when first needed."""

    def __init__(self, batch: StepBatch, inverse_density: FloatArray) -> None:
        self.batch = batch
        self._inverse_density = inverse_density
        self._cache: dict[str, Any] = {}

    def variable(self, keyword: str) -> FloatArray:
        """A filter or differential variable: Z, A, GEN, E, ENUC or EAMU (A taken as amu)."""
        if keyword not in self._cache:
            batch = self.batch
            plain = {"Z": batch.charge, "A": batch.mass, "GEN": batch.generation, "E": batch.energy}
            if keyword in plain:
                self._cache[keyword] = plain[keyword]
            else:  # ENUC, EAMU
                self._cache[keyword] = batch.energy / np.maximum(batch.mass, 1)
        value: FloatArray = self._cache[keyword]
        return value

    def passes(self, chosen: Filter) -> Any:
        key = f"filter {chosen.uuid}"
        if key not in self._cache:
            keep = np.ones(len(self.batch), dtype=bool)
            for rule in chosen.rules:
                keep &= OPERATIONS[rule.operator](self.variable(rule.keyword), rule.value)
            self._cache[key] = keep
        return self._cache[key]

    def weight(self, kind: str) -> FloatArray:
        """The per-step weight summed for a quantity."""
        if kind not in self._cache:
            self._cache[kind] = self._weight(kind)
        value: FloatArray = self._cache[kind]
        return value

    def _weight(self, kind: str) -> FloatArray:
        batch = self.batch
        if kind == "dose":
            return batch.edep * self._inverse_density[batch.zone]
        if kind == "edep":
            return batch.edep
        if kind == "length":
            return batch.length
        if kind == "length_enuc":
            return batch.length * self.variable("ENUC")
        if kind == "length_beta":
            gamma = 1.0 + self.variable("ENUC") / AMU_MEV
            return batch.length * np.sqrt(1.0 - 1.0 / (gamma * gamma))
        if kind == "length_let":
            return batch.length * batch.track_averaged_let
        if kind == "edep_let":
            return batch.edep * batch.let
        raise KeyError(kind)


def _differential(
    cells: Any, spatial: int, modifiers: Sequence[Modifier], steps: _Steps, rows: Rows
) -> tuple[Any, Any]:
    """The cells extended by the differential bins, and which steps fall inside them."""
    total = cells.copy()
    inside = np.ones(len(cells), dtype=bool)
    stride = spatial
    for modifier in modifiers:
        value = _take(steps.variable(modifier.kind), rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            if modifier.log:
                span = math.log(modifier.upper / modifier.lower)
                u = np.log(value / modifier.lower) * (modifier.bins / span)
            else:
                u = (value - modifier.lower) * (modifier.bins / (modifier.upper - modifier.lower))
        ok = (u >= 0) & (u < modifier.bins)
        inside &= ok
        total += stride * np.where(ok, u, 0).astype(np.int64)
        stride *= modifier.bins
    return total, inside


# --- pages ---------------------------------------------------------------------------------


def page_of(
    number: int, quantity: Quantity, kind: PageKind, values: FloatArray, bins: DetectorBins
) -> dict[str, Any]:
    """One page as SHIELD-HIT12A's reader writes it (spec/results.md §3)."""
    axes = [(a.name, a.unit, a.values) for a, n in zip(bins.axes, bins.shape, strict=True) if n > 1]
    axes += [
        ("", DIFFERENTIAL_UNITS[m.kind], _modifier_centres(m))
        for m in quantity.modifiers
        if m.bins > 1
    ]
    differential = [DIFFERENTIAL_UNITS[m.kind] for m in quantity.modifiers]
    detector_unit = ";".join([kind.unit, *differential])
    unit = detector_unit + ("/prim" if kind.normalized == 2 else "")
    metadata = {
        "page_number": str(number),
        "name": kind.name,
        "unit": unit,
        "dettyp": kind.name,
        "detector_type": str(kind.detector_type),
        "detector_unit": detector_unit,
        "page_normalized": str(kind.normalized),
        "page_offset": "0.0",
        "page_scale_factor": "1.0",
        "page_diff_units": kind.unit + "".join(f"/{u}" for u in differential),
    }
    if kind.unit_ids:
        metadata["page_unit_ids"] = kind.unit_ids
    if quantity.filter is not None:
        metadata["page_filter_name"] = quantity.filter.name
    if quantity.modifiers:
        metadata.update(_differential_metadata(quantity.modifiers))
    page: dict[str, Any] = {
        "dimensions": len(axes),
        "data": {"name": kind.name, "unit": unit, "values": _json(values)},
        "metadata": metadata,
    }
    for k, (name, axis_unit, centres) in enumerate(axes, start=1):
        page[f"axis_dim{k}"] = {"name": name, "unit": axis_unit, "values": _json(centres)}
    return page


def _modifier_centres(modifier: Modifier) -> FloatArray:
    if modifier.log:
        edges = np.geomspace(modifier.lower, modifier.upper, modifier.bins + 1)
        return np.sqrt(edges[:-1] * edges[1:])
    step = (modifier.upper - modifier.lower) / modifier.bins
    return modifier.lower + (np.arange(modifier.bins, dtype=np.float64) + 0.5) * step


def _differential_metadata(modifiers: Sequence[Modifier]) -> dict[str, str]:
    """The ``page_diff_*`` entries, numpy-printed two-element lists as the reader writes them."""
    first, second = modifiers[0], modifiers[1] if len(modifiers) > 1 else None
    kinds = [DIFFERENTIAL_TYPES[first.kind], DIFFERENTIAL_TYPES[(second or first).kind]]
    return {
        "page_diff_size": str(np.array([first.bins, second.bins if second else 1])),
        "page_diff_start": str(np.array([first.lower, second.lower if second else 0.0])),
        "page_diff_stop": str(np.array([first.upper, second.upper if second else 0.0])),
        "page_diff_type": str(np.array(kinds)),
    }


def estimator_of(output: Output, pages: list[dict[str, Any]], primaries: int) -> dict[str, Any]:
    geotyp, units = GEOMETRY[output.detector.kind]
    metadata = {
        "file_corename": output.name,
        "file_counter": "1",
        "number_of_primaries": str(primaries),
        "geo_name": output.detector.name,
        "geotyp": geotyp,
        "page_count": str(len(pages)),
        "error_type": "0",
    }
    if units:
        metadata.update(geo_units=units, geo_unit_ids="[10 10 10]")
    return {"name": output.name, "metadata": metadata, "pages": pages}


def _json(values: FloatArray) -> list[float | None]:
    listed: list[float | None] = np.asarray(values, dtype=np.float64).tolist()
    if not np.all(np.isfinite(values)):
        listed = [v if v is not None and math.isfinite(v) else None for v in listed]
    return listed


# --- voxel doses (MCsquare) ----------------------------------------------------------------
