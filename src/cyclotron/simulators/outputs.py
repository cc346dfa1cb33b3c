"""Engine output files, read with pymchelper into the estimator format of spec/results.md.

OutputError    an output file that cannot be read: missing, empty, truncated or corrupt, not
               an engine format, or holding no pages

pymchelper (untyped) is met only here: ``read_estimator`` turns what its reader decodes into plain
JSON objects, and any exception its parsers hit on a bad file becomes an OutputError naming the
file. pymchelper is imported on first use, as it pulls in a large part of its package.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cyclotron.estimators.model import (
    EstimatorError,
    core_name,
    page_number,
    validate_estimators,
)

# Reader attributes that are not metadata: the axes and pages are written out as such, and the
# rest describe how the reader laid out the file's bytes, which no longer applies to the result.
ESTIMATOR_INTERNALS = frozenset(
    {"x", "y", "z", "pages", "data_order", "payload_offset", "rec_size"}
)
PAGE_INTERNALS = frozenset({"estimator", "data_raw", "error_raw", "diff_axis1", "diff_axis2"})

# pymchelper's axis ids: x, y, z (or r, phi, z), then the two differential axes; §4's axis order.
AXIS_IDS = (0, 1, 2, 3, 4)
FIRST_DIFF_AXIS = 3
ZONE_GEOMETRIES = frozenset({"ZONE", "DZONE"})
MCPL = "MCPL"  # phase-space pages: 8 numbers per particle
FLUKA_UNIT = re.compile(r"_fort\.(\d+)$")


class OutputError(Exception):
    """An engine output file that cannot be read; the message names the file and why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path.name}: {reason}")
        self.path = path
        self.reason = reason


def output_core_name(path: Path) -> str:
    """The file core name: ``z_profile`` for ``z_profile_0001.bdo``, ``21`` for ``run001_fort.21``.

    FLUKA's unit is taken here: pymchelper 2.9.6 takes the last two characters of any path with
    ``_fort`` in it (``.9`` for unit 9, or for a file in a ``*_fort*`` folder).
    """
    from pymchelper.input_output import guess_corename

    unit = FLUKA_UNIT.search(path.name)
    if unit is not None:
        return unit.group(1)
    name = guess_corename(path.name) or path.stem
    return core_name(str(name))


def read_estimator(path: Path, name: str | None = None) -> dict[str, Any]:
    """Read one engine output file into ``{name, metadata, pages}`` (results.md §2–§4).

    The name defaults to the file core name. Raises OutputError.
    """
    return estimator_document(_load(path), path, name)


def estimator_document(estimator: Any, path: Path, name: str | None = None) -> dict[str, Any]:
    """A pymchelper estimator read from ``path`` as ``{name, metadata, pages}``.

    The name defaults to the file core name. Raises OutputError.
    """
    corename = output_core_name(path)
    try:
        pages = sorted(
            (_page(estimator, page, index) for index, page in enumerate(estimator.pages)),
            key=page_number,
        )
        metadata = {
            **_metadata(estimator.__dict__, ESTIMATOR_INTERNALS),
            "file_corename": corename,
            "file_counter": "1",
            "number_of_primaries": str(int(estimator.number_of_primaries)),
            "page_count": str(len(pages)),
            "error_type": "0",
        }
        result = {"name": name or corename, "metadata": metadata, "pages": pages}
        # A check only: its copy would read a one-particle phase-space page as an old [[v]].
        validate_estimators([result])
    except EstimatorError as exc:
        raise OutputError(path, f"its contents break the result format ({exc})") from exc
    except Exception as exc:  # pymchelper's views of the data fail with whatever they hit
        raise OutputError(
            path, f"its contents are inconsistent ({type(exc).__name__}: {exc})"
        ) from exc
    return result


def read_task_outputs(task_dir: Path, patterns: Sequence[str] = ("*.bdo",)) -> list[dict[str, Any]]:
    """Every output of one task matching ``patterns``, one estimator per file core name.

    Estimators are named after their core names and sorted by them, FLUKA units (all digits)
    numerically; the order of the engine input (§7) is for the caller to apply. Two files with
    the same core name are refused. Raises OutputError.
    """
    files = sorted({path for pattern in patterns for path in task_dir.glob(pattern)})
    by_name: dict[str, Path] = {}
    for path in files:
        if not path.is_file():
            continue
        name = output_core_name(path)
        if name in by_name:
            raise OutputError(path, f"{by_name[name].name} has the same core name {name!r}")
        by_name[name] = path
    return [read_estimator(by_name[name], name) for name in sorted(by_name, key=_name_order)]


def _name_order(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _load(path: Path) -> Any:
    """pymchelper's Estimator for ``path``, with at least one page."""
    from pymchelper.input_output import fromfile

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise OutputError(path, "no such file") from None
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from exc
    if not path.is_file():
        raise OutputError(path, "not a file")
    if size == 0:
        raise OutputError(path, "the file is empty (0 bytes)")
    try:
        estimator = fromfile(str(path))
    except Exception as exc:  # its parsers fail on bad bytes with whatever they hit
        raise OutputError(
            path,
            "not a readable engine output, perhaps truncated or corrupt "
            f"({type(exc).__name__}: {exc})",
        ) from exc
    if estimator is None:
        raise OutputError(path, "not in an output format pymchelper can read")
    if not estimator.pages:
        raise OutputError(path, "the file holds no pages")
    return estimator


def _page(estimator: Any, page: Any, index: int) -> dict[str, Any]:
    binned = [i for i in AXIS_IDS if page.axis(i).n > 1]
    data = np.asarray(page.data, dtype=np.float64)
    values: list[Any]
    if str(page.dettyp) == MCPL:
        values = [_numbers(record) for record in data.T]  # one record of 8 per particle
    else:
        values = _numbers(data.ravel(order="F"))
    result: dict[str, Any] = {
        "dimensions": len(binned),
        "data": {"name": str(page.name), "unit": str(page.unit), "values": values},
    }
    for k, axis_id in enumerate(binned, start=1):
        result[f"axis_dim{k}"] = _axis(estimator, page, axis_id)
    metadata = _metadata(page.__dict__, PAGE_INTERNALS)
    metadata.setdefault("page_number", str(index))  # bin2010 files hold one untagged page
    result["metadata"] = metadata
    return result


def _axis(estimator: Any, page: Any, axis_id: int) -> dict[str, Any]:
    axis = page.axis(axis_id)
    unit = str(axis.unit)
    if axis_id >= FIRST_DIFF_AXIS:
        unit = _diff_unit(page, axis_id - FIRST_DIFF_AXIS + 1) or unit
    values: list[float | None]
    if _is_zone_axis(estimator, axis_id, axis):
        values = [float(axis.min_val + i) for i in range(axis.n)]
    else:
        values = _numbers(axis.data)  # bin centres; geometric means of the edges for log bins
    return {"name": str(axis.name), "unit": unit, "values": values}


def _is_zone_axis(estimator: Any, axis_id: int, axis: Any) -> bool:
    """Zone scoring's one axis counts zones ``min_val`` … ``max_val``: its values are the zones."""
    zones = str(estimator.geotyp) in ZONE_GEOMETRIES and axis_id == 0
    return zones and bool(axis.max_val - axis.min_val == axis.n - 1)


def _diff_unit(page: Any, k: int) -> str | None:
    """Unit of differential axis ``k`` from the ``page_diff_units`` tag ``data;diff1;diff2``.

    pymchelper 2.9.6 takes elements 0 and 1 of that tag, i.e. the data unit for diff 1.
    """
    tag = getattr(page, "page_diff_units", None)
    parts = tag.split(";") if isinstance(tag, str) else []
    return parts[k].strip() if len(parts) > k and parts[k].strip() else None


def _metadata(attributes: dict[str, Any], internals: frozenset[str]) -> dict[str, str]:
    """The text form of a reader's attributes; attributes without a value are left out."""
    metadata: dict[str, str] = {}
    for key, value in attributes.items():
        if key in internals or value is None:
            continue
        if isinstance(value, bytes):  # FLUKA titles and dates
            metadata[key] = value.decode("utf-8", "replace").strip()
        else:
            metadata[key] = str(value)
    return metadata


def _numbers(array: Any) -> list[float | None]:
    """Plain floats, with None for what is not finite (JSON has no NaN)."""
    flat: list[float] = np.asarray(array, dtype=np.float64).ravel().tolist()
    return [v if math.isfinite(v) else None for v in flat]
