"""Geant4 command-based scoring: the meshes a macro defines, and the files it dumps, as estimators.

pymchelper has no reader for these files, so this module is one. A macro defines meshes with
``/score/create/boxMesh`` or ``/score/create/cylinderMesh``, places and sizes them
(``/score/mesh/translate/xyz``, ``boxSize``, ``cylinderSize``, ``cylinderRMin``, ``nBin``) and names
one file per quantity with ``/score/dumpQuantityToFile <mesh> <quantity> <file>``. Geant4's
``G4VScoreWriter`` writes each file as ``#`` header lines (mesh name, scorer name, then
``# iX, iY, iZ, total(value) [unit], total(val^2), entry``; a cylinder's indices are ``iZ, iPHI,
iR``) and one ``i,j,k,sum,sum2,entries`` row per bin.

Each mesh becomes one estimator named after it, with one page per dumped quantity in the order
the macro dumps them (page ``j`` is quantity ``j``). Values are the run's sums divided by its
primaries (``/run/beamOn``), the unit gets ``/prim`` and pages are merged as weighted means
(``page_normalized`` 2, spec/results.md §8). Axes are the mesh's own, in its frame (a rotated
mesh keeps its unrotated axes), with bin centres in cm; the ``φ`` axis covers the full turn.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cyclotron.estimators.model import EstimatorError, validate_estimators
from cyclotron.simulators.outputs import OutputError

LENGTH_UNITS = {"nm": 1e-7, "um": 1e-4, "mm": 0.1, "cm": 1.0, "m": 100.0, "km": 1e5}
BEAM_ON = re.compile(r"^[ \t]*/run/beamOn[ \t]+(\d+)\b", re.MULTILINE)
HEADER_AXES = re.compile(r"^#\s*i(\w+),\s*i(\w+),\s*i(\w+),\s*total\(value\)\s*(?:\[(.*?)\])?")
FULL_TURN = 2 * math.pi


@dataclass
class ScoringMesh:
    """One ``/score/create/...Mesh`` block: its kind, placement (cm), size (cm) and bins."""

    name: str
    kind: str  # "box" or "cylinder"
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size: tuple[float, ...] = ()  # half-widths x, y, z; or radius, half-length
    rmin: float = 0.0
    bins: tuple[int, int, int] = (1, 1, 1)  # as nBin reads them: box x y z; cylinder r z phi
    quantities: dict[str, str] = field(default_factory=dict)  # name -> primitive scorer


@dataclass(frozen=True)
class QuantityDump:
    mesh: str
    quantity: str
    file: str


@dataclass
class MacroScoring:
    """What a macro scores: its meshes by name and its dump commands in order."""

    meshes: dict[str, ScoringMesh]
    dumps: list[QuantityDump]


def beam_on_of(macro: str) -> int | None:
    """The number of events of the macro's first ``/run/beamOn`` (None without one)."""
    match = BEAM_ON.search(macro)
    return int(match.group(1)) if match else None


def _lengths(words: list[str], count: int) -> tuple[float, ...]:
    """``count`` numbers followed by an optional length unit (Geant4's default is mm)."""
    if len(words) < count:
        raise ValueError(f"expected {count} numbers")
    scale = LENGTH_UNITS.get(words[count], 0.1) if len(words) > count else 0.1
    return tuple(float(w) * scale for w in words[:count])


def _apply(mesh: ScoringMesh, command: str, words: list[str]) -> None:
    if command == "/score/mesh/translate/xyz":
        x, y, z = _lengths(words, 3)
        mesh.centre = (x, y, z)
    elif command == "/score/mesh/boxSize":
        mesh.size = _lengths(words, 3)
    elif command == "/score/mesh/cylinderSize":
        mesh.size = _lengths(words, 2)
    elif command == "/score/mesh/cylinderRMin":
        (mesh.rmin,) = _lengths(words, 1)
    elif command == "/score/mesh/nBin":
        first, second, third = (int(w) for w in words[:3])
        mesh.bins = (first, second, third)
    elif command.startswith("/score/quantity/") and words:
        mesh.quantities[words[0]] = command.rsplit("/", 1)[1]


def parse_scoring(macro: str) -> MacroScoring:
    """The meshes and dumps of a macro. Raises ValueError on a malformed scoring command."""
    meshes: dict[str, ScoringMesh] = {}
    dumps: list[QuantityDump] = []
    current: ScoringMesh | None = None
    for number, raw in enumerate(macro.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        command, args = words[0], words[1:]
        try:
            if command in ("/score/create/boxMesh", "/score/create/cylinderMesh"):
                kind = "box" if command.endswith("boxMesh") else "cylinder"
                current = meshes[args[0]] = ScoringMesh(args[0], kind)
            elif command == "/score/close":
                current = None
            elif command == "/score/dumpQuantityToFile":
                dumps.append(QuantityDump(args[0], args[1], args[2]))
            elif current is not None:
                _apply(current, command, args)
        except (IndexError, ValueError) as exc:
            raise ValueError(f"line {number} ({raw.strip()!r}) is malformed: {exc}") from None
    for mesh in meshes.values():
        if len(mesh.size) != (3 if mesh.kind == "box" else 2):
            raise ValueError(f"mesh {mesh.name!r} has no size")
    for dump in dumps:
        if dump.mesh not in meshes:
            raise ValueError(f"{dump.file} is dumped from {dump.mesh!r}, which no mesh defines")
    return MacroScoring(meshes, dumps)


def read_geant4_outputs(macro_path: Path) -> list[dict[str, Any]]:
    """The estimators of the run of ``macro_path``: one per mesh it dumps, pages in dump order.

    The dumped files are looked for beside the macro. Raises OutputError naming a file that is
    missing or does not fit its mesh.
    """
    workdir = macro_path.parent
    macro = macro_path.read_text(encoding="utf-8", errors="replace")
    primaries = beam_on_of(macro) or 0
    try:
        scoring = parse_scoring(macro)
    except ValueError as exc:
        raise OutputError(macro_path, str(exc)) from exc
    grouped: dict[str, list[QuantityDump]] = {}
    for dump in scoring.dumps:
        grouped.setdefault(dump.mesh, []).append(dump)
    estimators = []
    for name, dumps in grouped.items():
        mesh = scoring.meshes[name]
        pages = [
            _page(workdir / dump.file, mesh, dump, index, primaries)
            for index, dump in enumerate(dumps)
        ]
        estimators.append(_estimator(mesh, pages, primaries))
    try:
        return validate_estimators(estimators)
    except EstimatorError as exc:
        raise OutputError(workdir, f"the estimators break the result format ({exc})") from exc


def _estimator(mesh: ScoringMesh, pages: list[dict[str, Any]], primaries: int) -> dict[str, Any]:
    metadata = {
        "file_corename": mesh.name,
        "file_format": "geant4_scoring_csv",
        "file_counter": "1",
        "geotyp": mesh.kind,
        "number_of_primaries": str(primaries),
        "page_count": str(len(pages)),
        "error_type": "0",
    }
    return {"name": mesh.name, "metadata": metadata, "pages": pages}


def _page(
    path: Path, mesh: ScoringMesh, dump: QuantityDump, index: int, primaries: int
) -> dict[str, Any]:
    names, unit, sums = _read_dump(path)
    grid = _by_axis(path, mesh, names, sums)
    values = grid / primaries if primaries > 0 else grid
    axes = [axis for axis in _axes(mesh) if len(axis["values"]) > 1]
    unit = f"{unit}/prim" if unit else "/prim"
    page: dict[str, Any] = {
        "dimensions": len(axes),
        "data": {"name": dump.quantity, "unit": unit, "values": _finite(values)},
        "metadata": {
            "page_number": str(index),
            "name": dump.quantity,
            "unit": unit,
            "dettyp": mesh.quantities.get(dump.quantity, ""),
            "page_normalized": "2",
        },
    }
    for k, axis in enumerate(axes, start=1):
        page[f"axis_dim{k}"] = axis
    return page


def _read_dump(path: Path) -> tuple[list[str], str, np.ndarray[Any, Any]]:
    """The index axis names, the unit and the ``i, j, k, sum`` rows of one dumped file."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        raise OutputError(path, "no such file") from None
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from exc
    header = next((m for m in map(HEADER_AXES.match, lines) if m), None)
    if header is None:
        raise OutputError(path, "not a Geant4 scoring dump (no '# iX, iY, iZ, total(value)' line)")
    rows = [line for line in lines if line.strip() and not line.startswith("#")]
    try:
        table = np.array([[float(v) for v in row.split(",")[:4]] for row in rows], dtype=float)
    except ValueError as exc:
        raise OutputError(path, f"a row is not numeric ({exc})") from exc
    if table.ndim != 2 or table.shape[1] != 4:
        raise OutputError(path, "the file holds no complete rows")
    return [header.group(i).upper() for i in (1, 2, 3)], header.group(4) or "", table


def _by_axis(
    path: Path, mesh: ScoringMesh, names: list[str], table: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """The sums in Fortran order of the mesh's axes (x, y, z or r, φ, z)."""
    order = ("X", "Y", "Z") if mesh.kind == "box" else ("R", "PHI", "Z")
    if sorted(names) != sorted(order):
        raise OutputError(path, f"index columns {names} do not fit a {mesh.kind} mesh")
    counts = dict(zip(order, _counts(mesh), strict=True))
    shape = tuple(counts[name] for name in names)
    grid = np.zeros(shape)
    indices = table[:, :3].astype(int)
    if (indices < 0).any() or (indices >= np.array(shape)).any():
        raise OutputError(path, f"a bin index lies outside the mesh's {shape} bins")
    if len(table) != math.prod(shape):
        raise OutputError(path, f"{len(table)} rows for a mesh of {math.prod(shape)} bins")
    grid[tuple(indices.T)] = table[:, 3]
    arranged = np.transpose(grid, [names.index(name) for name in order])
    result: np.ndarray[Any, Any] = arranged.ravel(order="F")
    return result


def _counts(mesh: ScoringMesh) -> tuple[int, int, int]:
    """Bins along x, y, z (box) or r, φ, z (cylinder; nBin reads ``r z φ``)."""
    first, second, third = mesh.bins
    return (first, second, third) if mesh.kind == "box" else (first, third, second)


def _axes(mesh: ScoringMesh) -> list[dict[str, Any]]:
    cx, cy, cz = mesh.centre
    if mesh.kind == "box":
        hx, hy, hz = mesh.size
        spans = [("X", cx - hx, cx + hx, "cm"), ("Y", cy - hy, cy + hy, "cm")]
        spans.append(("Z", cz - hz, cz + hz, "cm"))
    else:
        radius, hz = mesh.size
        spans = [("R", mesh.rmin, radius, "cm"), ("PHI", 0.0, FULL_TURN, "rad")]
        spans.append(("Z", cz - hz, cz + hz, "cm"))
    axes = []
    for (label, low, high, unit), n in zip(spans, _counts(mesh), strict=True):
        centres = low + (np.arange(n) + 0.5) * (high - low) / n
        axes.append({"name": f"Position ({label})", "unit": unit, "values": centres.tolist()})
    return axes


def _finite(values: np.ndarray[Any, Any]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]
