"""Estimator results on disk: each task's ``estimators.json``, the job's running sums and its
merged results.

As each task completes its estimators are folded into the job's running sums (``fold_task``,
``.cyclotron/running.npz``), so that the merge that ends the job (``merge_job_files``) only
finishes them: merged results are stored as binary arrays, ``results/estimators.npz``, written
atomically and reproducibly, and turned into JSON where they are served. Results stored by
earlier versions, ``results/estimators.json.gz``, are read as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from cyclotron.estimators.merge import MergeError, merge_task_results
from cyclotron.estimators.model import EstimatorError, validate_estimators
from cyclotron.estimators.running import (
    RunningSums,
    load_sums,
    locked,
    pack_estimators,
    read_arrays,
    read_layout,
    save_sums,
    unpack_estimators,
    write_arrays,
)

log = logging.getLogger(__name__)

TASK_FILE = "estimators.json"
RESULTS_FILE = "estimators.npz"
JSON_RESULTS_FILE = "estimators.json.gz"  # as stored before binary results
BOOKKEEPING = ".cyclotron"  # the job's own files, never listed or served
SUMS_FILE = "running.npz"
MERGED_FILE = "merged.npz"  # the running sums finished: the results of the tasks folded
TASKS_DIR = "tasks"  # each task's estimators as binary arrays, under BOOKKEEPING
LOCK_FILE = "running.lock"


def read_task_estimators(task_dir: Path) -> list[dict[str, Any]]:
    """One task's estimators, as its run left them in ``estimators.json``."""
    path = task_dir / TASK_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MergeError(f"task left no {TASK_FILE}") from exc
    except (OSError, ValueError) as exc:
        raise MergeError(f"cannot read {path.name}: {exc}") from exc
    listed = document.get("estimators") if isinstance(document, dict) else document
    try:
        return validate_estimators(listed)
    except EstimatorError as exc:
        raise MergeError(f"{path.name}: {exc}") from exc


def write_task_estimators(task_dir: Path, estimators: list[dict[str, Any]]) -> None:
    """One task's estimators, written atomically where ``merge_task_files`` reads them."""
    task_dir.mkdir(parents=True, exist_ok=True)
    path = task_dir / TASK_FILE
    temporary = path.with_name(f".{TASK_FILE}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"estimators": estimators}), encoding="utf-8")
    os.replace(temporary, path)


def merge_task_files(job_dir: Path, completed: Sequence[int]) -> list[dict[str, Any]]:
    """Merge the completed tasks' estimators (task directories ``tasks/<index>``) in full."""
    outputs = [(i, read_task_estimators(job_dir / "tasks" / str(i))) for i in sorted(completed)]
    return merge_task_results(outputs)


def _sums_path(job_dir: Path) -> Path:
    return job_dir / BOOKKEEPING / SUMS_FILE


def _lock(job_dir: Path) -> AbstractContextManager[None]:
    return locked(job_dir / BOOKKEEPING / LOCK_FILE)


def _packed_task_path(job_dir: Path, index: int) -> Path:
    return job_dir / BOOKKEEPING / TASKS_DIR / f"{index}.npz"


def fold_task(job_dir: Path, index: int, unfinished: Collection[int] = ()) -> None:
    """Store one completed task's estimators as binary arrays and fold into the job's running
    sums every stored task they can take, under the job's lock.

    Tasks are folded in ascending index order only, so that the sums, and the results, do not
    depend on the order tasks end in: a task above one still ``unfinished`` (the job's other
    tasks not yet ended) waits, stored, for a later fold or the merge. A task that cannot be
    read spoils the sums (the merge then reads every task's output and names the fault).
    """
    with _lock(job_dir):
        sums = load_sums(_sums_path(job_dir))
        if sums.spoiled is not None:
            return
        if index not in sums.tasks:
            try:
                estimators = read_task_estimators(job_dir / "tasks" / str(index))
            except MergeError as exc:
                sums.layout["spoiled"] = exc.message
                save_sums(_sums_path(job_dir), sums)
                return
            write_arrays(_packed_task_path(job_dir, index), *pack_estimators(estimators))
        below = min(unfinished, default=None)
        if _advance(job_dir, sums, lambda task: below is None or task < below):
            save_sums(_sums_path(job_dir), sums)
            _store_merged(job_dir, sums)


def _merged_path(job_dir: Path) -> Path:
    return job_dir / BOOKKEEPING / MERGED_FILE


def _store_merged(job_dir: Path, sums: RunningSums) -> None:
    """The running sums finished, stored beside them: the results of the tasks folded."""
    try:
        layout, arrays = sums.packed()
    except MergeError:
        _merged_path(job_dir).unlink(missing_ok=True)
        return
    write_arrays(_merged_path(job_dir), layout, arrays)


def _merged_of(job_dir: Path, completed: Sequence[int]) -> Path | None:
    """The stored finished sums, when they hold exactly the completed tasks."""
    path = _merged_path(job_dir)
    try:
        tasks = read_layout(path).get("tasks")
    except FileNotFoundError:
        return None
    return path if tasks == sorted(completed) else None


def _advance(job_dir: Path, sums: RunningSums, may_fold: Callable[[int], bool]) -> bool:
    """Fold the stored tasks above the last one folded, in ascending order, while
    ``may_fold``; True when one was folded."""
    folder = job_dir / BOOKKEEPING / TASKS_DIR
    try:
        names = [path.stem for path in folder.iterdir() if path.suffix == ".npz"]
    except FileNotFoundError:
        return False
    stored = sorted(int(name) for name in names if name.isdigit())
    folded = False
    for task in stored:
        if task <= sums.last or sums.spoiled is not None:
            continue
        if not may_fold(task):
            break
        layout, arrays = read_arrays(_packed_task_path(job_dir, task))
        sums.fold(task, layout["estimators"], arrays)
        folded = True
    return folded


def _caught_up(job_dir: Path, completed: Sequence[int]) -> tuple[RunningSums | None, bool]:
    """The running sums with every stored completed task folded, when they then hold exactly
    the completed tasks and are not spoiled, else None (the full merge is needed); and
    whether a task was folded here."""
    done = sorted(completed)
    sums = load_sums(_sums_path(job_dir))
    if sums.spoiled is not None or not set(sums.tasks) <= set(done):
        return None, False
    advanced = _advance(job_dir, sums, lambda task: task in done)
    if sums.spoiled is None and sums.tasks == done:
        return sums, advanced
    return None, False


def merge_job_files(job_dir: Path, completed: Sequence[int]) -> str:
    """Store the merged results of the completed tasks in ``results/``; returns their digest.

    From the running sums when they hold those tasks (a constant-time step once the tasks are
    folded), else by merging the task files in full. Raises MergeError. Run twice, it writes
    the same file.
    """
    try:
        with _lock(job_dir):
            digest = _merge_from_sums(job_dir, completed)
    except (OSError, ValueError, KeyError):  # unreadable bookkeeping: the task files decide
        log.warning("the running sums of %s are unusable; merging every task", job_dir.name)
        digest = None
    if digest is not None:
        return digest
    return write_binary_results(job_dir / "results", merge_task_files(job_dir, completed))


def _merge_from_sums(job_dir: Path, completed: Sequence[int]) -> str | None:
    merged = _merged_of(job_dir, completed)
    if merged is not None:  # every task folded as it completed: a link
        return _copy_results(merged, job_dir / "results" / RESULTS_FILE)
    sums, advanced = _caught_up(job_dir, completed)
    if sums is None:
        return None
    if advanced:
        save_sums(_sums_path(job_dir), sums)
        _store_merged(job_dir, sums)
    try:
        layout, arrays = sums.packed()
    except MergeError:
        return None  # the full merge names the fault
    return _write_packed(job_dir / "results", layout, arrays)


def partial_estimators(job_dir: Path, completed: Sequence[int]) -> list[dict[str, Any]]:
    """The completed tasks merged now: from the running sums (with the completed tasks that
    wait to be folded folded in memory), else in full. Raises MergeError."""
    try:
        with _lock(job_dir):
            merged = _merged_of(job_dir, completed)
            if merged is not None:
                return unpack_estimators(*read_arrays(merged))
            sums, _ = _caught_up(job_dir, completed)
        if sums is not None:
            return sums.merged()
    except (OSError, ValueError, KeyError, MergeError):
        pass  # the full merge reads the task files, and names any fault
    return merge_task_files(job_dir, completed)


def results_path(results_dir: Path) -> Path:
    """The stored results: binary, or JSON as stored before binary results."""
    binary = results_dir / RESULTS_FILE
    legacy = results_dir / JSON_RESULTS_FILE
    return legacy if legacy.exists() and not binary.exists() else binary


def _write_packed(results_dir: Path, layout: dict[str, Any], arrays: dict[str, Any]) -> str:
    return write_arrays(results_dir / RESULTS_FILE, layout, arrays)


def _copy_results(source: Path, target: Path) -> str:
    """``source`` placed at ``target`` atomically (a hard link, a copy where links fail);
    returns its SHA-256. ``source`` is only ever replaced, never rewritten in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        temporary.write_bytes(source.read_bytes())
    os.replace(temporary, target)
    temporary.unlink(missing_ok=True)  # left by rename when target was already this file
    return _file_digest(target)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_results(results_dir: Path, estimators: list[dict[str, Any]]) -> str:
    """Store results as given, compressed JSON, atomically (what a worker reports over the
    YAPTIDE face, served as it sent them); returns the SHA-256 of their JSON text."""
    text = json.dumps({"estimators": estimators}, separators=(",", ":"), allow_nan=False)
    data = text.encode("utf-8")
    results_dir.mkdir(parents=True, exist_ok=True)
    target = results_dir / JSON_RESULTS_FILE
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
        packed.write(data)
    os.replace(temporary, target)
    return hashlib.sha256(data).hexdigest()


def write_binary_results(results_dir: Path, estimators: list[dict[str, Any]]) -> str:
    """Store merged results as binary arrays, atomically; returns the file's SHA-256."""
    return _write_packed(results_dir, *pack_estimators(estimators))


def read_results(results_dir: Path) -> list[dict[str, Any]] | None:
    """The stored results (binary, or JSON from before), or None when none are stored."""
    path = results_path(results_dir)
    try:
        if path.name == RESULTS_FILE:
            return unpack_estimators(*read_arrays(path))
        with gzip.open(path, "rb") as handle:
            document = json.loads(handle.read())
    except FileNotFoundError:
        return None
    estimators: list[dict[str, Any]] = document["estimators"]
    return estimators


def results_digest(results_dir: Path) -> str | None:
    """SHA-256 of the stored results file."""
    try:
        return _file_digest(results_path(results_dir))
    except FileNotFoundError:
        return None
