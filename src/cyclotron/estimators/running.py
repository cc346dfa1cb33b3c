"""A job's estimators as binary arrays: running sums folded as tasks complete, merged results.

Both are NumPy ``.npz`` archives written byte for byte reproducibly (stored members, a fixed
date), so folding or merging the same tasks twice writes the same file. Each holds a ``layout``
member, the JSON of everything but the numbers, and float64 arrays named by slot.

Running sums (``RunningSums``) keep, per estimator page, what results.md §6 needs to merge one
more task in constant time: W = Σw, W2 = Σw² and, for weighted-mean pages, Σw·d and Σw·d²
with d = x − K, the values shifted by those of the first task folded (K): the sums Σw·x and
Σw·x² of §6.2 without their cancellation, so that μ = K + Σw·d/W and S = Σw·d² − (Σw·d)²/W
agree with the full merge to a few ulps; a sum for counters; the lowest task's values for
maps; the records of phase-space pages. Any task that does not fit (another layout, a bad
weight) marks the sums ``spoiled``: the caller then merges the task files in full, which names
the fault.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from cyclotron.estimators.merge import (
    FIRST,
    SUM,
    Floats,
    MergeError,
    _as_floats,
    _check_same_layout,
    _file_key,
    _to_json,
    _validated,
    _weight,
)
from cyclotron.estimators.model import CONCATENATED, page_normalization, page_number

LAYOUT = "layout"
_DATE = (1980, 1, 1, 0, 0, 0)
_VERSION = 1


def _dumps(layout: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(layout)
    except (TypeError, orjson.JSONEncodeError):  # an integer past 64 bits
        return json.dumps(layout, separators=(",", ":"), allow_nan=False).encode("utf-8")


def write_arrays(path: Path, layout: Mapping[str, Any], arrays: Mapping[str, Floats]) -> str:
    """An ``.npz`` of ``layout`` (JSON) and ``arrays``, atomically and reproducibly; returns
    the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    members = {LAYOUT: np.frombuffer(_dumps(layout), dtype=np.uint8), **arrays}
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in members.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_DATE)
            archive.writestr(info, buffer.getbuffer())
    data = content.getbuffer()
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return hashlib.sha256(data).hexdigest()


def read_layout(path: Path) -> dict[str, Any]:
    """The layout alone of what ``write_arrays`` wrote (FileNotFoundError when none)."""
    with np.load(path, allow_pickle=False) as archive:
        layout: dict[str, Any] = orjson.loads(archive[LAYOUT].tobytes())
    return layout


def read_arrays(path: Path) -> tuple[dict[str, Any], dict[str, Floats]]:
    """The layout and arrays ``write_arrays`` wrote (FileNotFoundError when there are none)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    layout: dict[str, Any] = orjson.loads(arrays.pop(LAYOUT).tobytes())
    return layout, arrays


# --- merged results ---------------------------------------------------------------------


def pack_estimators(
    estimators: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, Any], dict[str, Floats]]:
    """Merged estimators as a layout and arrays: numeric values and errors become slots."""
    arrays: dict[str, Floats] = {}
    listed: list[dict[str, Any]] = []
    for estimator in estimators:
        pages = []
        for page in estimator["pages"]:
            page = dict(page)
            if page_normalization(page) != CONCATENATED:
                slot = _next_slot(arrays)
                arrays[f"v{slot}"] = _as_floats(page["data"]["values"])
                page["data"] = {**page["data"], "values": slot}
                if "error" in page:
                    arrays[f"e{slot}"] = _as_floats(page["error"]["values"])
                    page["error"] = {**page["error"], "values": slot}
            pages.append(page)
        listed.append({**estimator, "pages": pages})
    return {"version": _VERSION, "estimators": listed}, arrays


def unpack_estimators(
    layout: Mapping[str, Any], arrays: Mapping[str, Floats]
) -> list[dict[str, Any]]:
    """The estimators ``pack_estimators`` packed, as JSON-ready objects (null for non-finite)."""
    estimators = []
    for estimator in layout["estimators"]:
        pages = []
        for page in estimator["pages"]:
            slot = page["data"]["values"]
            if isinstance(slot, int) and page_normalization(page) != CONCATENATED:
                page = {**page, "data": {**page["data"], "values": _to_json(arrays[f"v{slot}"])}}
                if "error" in page:
                    page["error"] = {**page["error"], "values": _to_json(arrays[f"e{slot}"])}
            pages.append(page)
        estimators.append({**estimator, "pages": pages})
    return estimators


# --- running sums -----------------------------------------------------------------------


class RunningSums:
    """The fold of the tasks completed so far; ``layout`` is JSON, ``arrays`` float64.

    layout: ``tasks`` folded (ascending), ``spoiled`` (a reason, or None), ``estimators``: per
    file key, in the order the full merge lists them: ``first`` task holding the key and its
    ``position`` there, contributing ``tasks``, ``weights``, the lowest contributing task's
    ``metadata`` and ``pages`` (values left out; for phase-space pages, records by task).
    """

    def __init__(
        self, layout: dict[str, Any] | None = None, arrays: dict[str, Floats] | None = None
    ):
        self.layout: dict[str, Any] = layout or {
            "version": _VERSION,
            "tasks": [],
            "spoiled": None,
            "estimators": {},
        }
        self.arrays: dict[str, Floats] = arrays or {}
        self._task_arrays: Mapping[str, Floats] | None = None

    @property
    def tasks(self) -> list[int]:
        return list(self.layout["tasks"])

    @property
    def spoiled(self) -> str | None:
        reason = self.layout["spoiled"]
        return str(reason) if reason is not None else None

    @property
    def last(self) -> int:
        """The highest task folded, -1 before the first."""
        return max(self.layout["tasks"], default=-1)

    def fold(
        self,
        task: int,
        estimators: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, Floats] | None = None,
    ) -> None:
        """Add one completed task's estimators: as read from its output, or as
        ``pack_estimators`` packed them (with their ``arrays``). A task already folded is left
        as it is; a task that does not fit spoils the sums."""
        if task in self.layout["tasks"] or self.spoiled is not None:
            return
        self._task_arrays = arrays
        try:
            self._fold(task, estimators)
        except MergeError as exc:
            self.layout["spoiled"] = exc.message
            self.arrays = {}
        finally:
            self._task_arrays = None
        self.layout["tasks"] = sorted([*self.layout["tasks"], task])

    def _fold(self, task: int, estimators: Sequence[Mapping[str, Any]]) -> None:
        if self._task_arrays is None:
            checked = _validated(task, estimators)
        else:
            checked = [dict(estimator) for estimator in estimators]
        keys = [_file_key(estimator) for estimator in checked]
        if len(set(keys)) != len(keys):
            raise MergeError(f"task {task}: two estimators have the file core name")
        state: dict[str, Any] = self.layout["estimators"]
        for position, (key, estimator) in enumerate(zip(keys, checked, strict=True)):
            entry = state.setdefault(
                key, {"first": task, "position": position, "tasks": [], "weights": []}
            )
            if task < entry["first"]:
                entry["first"], entry["position"] = task, position
            weight = _weight(task, estimator)
            if weight > 0:
                self._fold_estimator(key, entry, task, weight, estimator)

    def _fold_estimator(
        self, key: str, entry: dict[str, Any], task: int, weight: int, estimator: Mapping[str, Any]
    ) -> None:
        pages: dict[int, dict[str, Any]] = {}
        for page in estimator["pages"]:
            number = page_number(page)
            if number in pages:
                raise MergeError(f"estimator {key!r}, page {number}: listed twice in task {task}")
            pages[number] = page
        lowest = not entry["tasks"] or task < min(entry["tasks"])
        if entry["tasks"]:
            known = {int(n) for n in entry["pages"]}
            if known != pages.keys():
                raise MergeError(f"estimator {key!r}: pages differ between tasks")
        else:
            entry["pages"] = {}
        w = float(weight)
        for number, page in pages.items():
            slot = f"{key}\x00{number}"
            held = entry["pages"].get(str(number))
            if held is not None:
                _check_same_layout(f"estimator {key!r}, page {number}:", held, page)
            kind = page_normalization(page)
            if kind == CONCATENATED:
                records = dict(held["records"]) if held is not None else {}
                records[str(task)] = page["data"]["values"]
            else:
                x = self._floats(page["data"]["values"], "v")
                self._fold_values(slot, kind, held is None, lowest, w, x, page)
            if held is None or lowest:
                skeleton = {k: v for k, v in page.items() if k not in ("data", "error")}
                skeleton["data"] = {k: v for k, v in page["data"].items() if k != "values"}
                skeleton["data_keys"] = list(page["data"])
                held = skeleton
            if kind == CONCATENATED:
                held["records"] = records
            entry["pages"][str(number)] = held
        if lowest:
            entry["metadata"] = dict(estimator["metadata"])
        entry["tasks"] = [*entry["tasks"], task]
        entry["weights"] = [*entry["weights"], weight]

    def _floats(self, values: Any, prefix: str) -> Floats:
        if self._task_arrays is not None and isinstance(values, int):
            return self._task_arrays[f"{prefix}{values}"]
        return _as_floats(values)

    def _fold_values(
        self,
        slot: str,
        kind: int | None,
        new: bool,
        lowest: bool,
        w: float,
        x: Floats,
        page: Mapping[str, Any],
    ) -> None:
        a = self.arrays
        if new:
            a[f"x{slot}"] = x  # the value of the lowest task (maps), the sum (counters), or K
            if kind not in (FIRST, SUM):
                a[f"d{slot}"] = np.zeros_like(x)  # Σw·d
                a[f"s{slot}"] = np.zeros_like(x)  # Σw·d²
            if "error" in page:  # the engine's own error, served while one task is merged
                a[f"o{slot}"] = self._floats(page["error"]["values"], "e")
            return
        a.pop(f"o{slot}", None)
        with np.errstate(invalid="ignore", over="ignore"):
            if kind == FIRST:
                if lowest:
                    a[f"x{slot}"] = x
            elif kind == SUM:
                a[f"x{slot}"] = a[f"x{slot}"] + x
            else:
                d = x - a[f"x{slot}"]
                a[f"d{slot}"] = a[f"d{slot}"] + w * d
                a[f"s{slot}"] = a[f"s{slot}"] + w * d * d

    def merged(self) -> list[dict[str, Any]]:
        """The merged estimators of the tasks folded, JSON-ready (see ``packed``)."""
        return unpack_estimators(*self.packed())

    def packed(self) -> tuple[dict[str, Any], dict[str, Floats]]:
        """The merged estimators of the tasks folded, as ``pack_estimators`` lays them out;
        MergeError when the sums are spoiled or an estimator has no contributing task (the
        full merge then says why)."""
        if self.spoiled is not None:
            raise MergeError(self.spoiled)
        state: dict[str, Any] = self.layout["estimators"]
        if not state:
            raise MergeError("no task produced estimators")
        order = sorted(state, key=lambda k: (state[k]["first"], state[k]["position"]))
        arrays: dict[str, Floats] = {}
        listed = [self._merged_estimator(key, state[key], arrays) for key in order]
        return {"version": _VERSION, "tasks": self.tasks, "estimators": listed}, arrays

    def _merged_estimator(
        self, key: str, entry: Mapping[str, Any], arrays: dict[str, Floats]
    ) -> dict[str, Any]:
        if not entry["tasks"]:
            raise MergeError(f"estimator {key!r}: no completed task with primaries has it")
        weights = [float(w) for w in entry["weights"]]
        pages = [
            self._merged_page(f"{key}\x00{number}", entry["pages"][str(number)], weights, arrays)
            for number in sorted(int(n) for n in entry["pages"])
        ]
        metadata = {
            **entry["metadata"],
            "number_of_primaries": str(sum(entry["weights"])),
            "file_counter": str(len(entry["tasks"])),
            "page_count": str(len(pages)),
            "error_type": "1" if any("error" in page for page in pages) else "0",
        }
        return {"name": key, "metadata": metadata, "pages": pages}

    def _merged_page(
        self, slot: str, held: Mapping[str, Any], weights: list[float], arrays: dict[str, Floats]
    ) -> dict[str, Any]:
        kind = page_normalization(held)
        error: Floats | None = None
        values: Any
        if kind == CONCATENATED:
            records = held["records"]
            values = [r for task in sorted(records, key=int) for r in records[task]]
        else:
            merged = self.arrays[f"x{slot}"]
            if kind not in (FIRST, SUM) and len(weights) > 1:
                with np.errstate(invalid="ignore", over="ignore"):
                    merged = merged + self.arrays[f"d{slot}"] / sum(weights)
            if len(weights) == 1 or kind not in (FIRST, SUM):
                error = self._error(slot, weights)
            values = _next_slot(arrays)
            arrays[f"v{values}"] = merged
            if error is not None:
                arrays[f"e{values}"] = np.where(np.isfinite(merged), error, np.nan)
        data = dict(held["data"])
        data["values"] = values
        data = {k: data[k] for k in held["data_keys"]}
        result: dict[str, Any] = {"dimensions": held["dimensions"], "data": data}
        if error is not None:
            result["error"] = {"name": "stderr", "unit": data["unit"], "values": values}
        for k in range(1, held["dimensions"] + 1):
            result[f"axis_dim{k}"] = held[f"axis_dim{k}"]
        result["metadata"] = dict(held["metadata"])
        return result

    def _error(self, slot: str, weights: list[float]) -> Floats | None:
        if len(weights) == 1:
            return self.arrays.get(f"o{slot}")
        w = np.array(weights, dtype=np.float64)
        total = w.sum()
        total_sq = (w * w).sum()
        shifted = self.arrays[f"d{slot}"]
        with np.errstate(invalid="ignore", over="ignore"):
            spread = self.arrays[f"s{slot}"] - shifted * shifted / total
            variance = np.maximum(spread, 0.0) / (total - total_sq / total)
            error: Floats = np.sqrt(variance * total_sq) / total
        return error


def _next_slot(arrays: Mapping[str, Floats]) -> int:
    return sum(1 for name in arrays if name.startswith("v"))


def _slot_names(sums: RunningSums) -> dict[str, str]:
    """Array names safe for a zip member: the running sums' keys hold any text."""
    return {name: f"a{i}" for i, name in enumerate(sorted(sums.arrays))}


def save_sums(path: Path, sums: RunningSums) -> None:
    names = _slot_names(sums)
    layout = {**sums.layout, "arrays": {short: name for name, short in names.items()}}
    write_arrays(path, layout, {names[name]: array for name, array in sums.arrays.items()})


def load_sums(path: Path) -> RunningSums:
    """The running sums stored at ``path``; empty ones when none are stored."""
    try:
        layout, stored = read_arrays(path)
    except FileNotFoundError:
        return RunningSums()
    names: dict[str, str] = layout.pop("arrays")
    return RunningSums(layout, {names[short]: array for short, array in stored.items()})


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` among the processes of this host."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
