"""Estimator results on disk: each task's ``estimators.json``, the job's merged results.

The merged results are stored compressed, ``results/estimators.json.gz``, written atomically
(a temporary file, then a rename), and served without being rewritten.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclotron.estimators.merge import MergeError, merge_task_results
from cyclotron.estimators.model import EstimatorError, validate_estimators

TASK_FILE = "estimators.json"
RESULTS_FILE = "estimators.json.gz"


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
    """Merge the completed tasks' estimators (task directories ``tasks/<index>``)."""
    outputs = [(i, read_task_estimators(job_dir / "tasks" / str(i))) for i in sorted(completed)]
    return merge_task_results(outputs)


def results_path(results_dir: Path) -> Path:
    return results_dir / RESULTS_FILE


def write_results(results_dir: Path, estimators: list[dict[str, Any]]) -> str:
    """Store the job's results atomically; returns the SHA-256 of their JSON text."""
    text = json.dumps({"estimators": estimators}, separators=(",", ":"), allow_nan=False)
    data = text.encode("utf-8")
    results_dir.mkdir(parents=True, exist_ok=True)
    target = results_path(results_dir)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
        packed.write(data)
    os.replace(temporary, target)
    return hashlib.sha256(data).hexdigest()


def read_results(results_dir: Path) -> list[dict[str, Any]] | None:
    """The stored results, or None when none are stored."""
    path = results_path(results_dir)
    try:
        with gzip.open(path, "rb") as handle:
            document = json.loads(handle.read())
    except FileNotFoundError:
        return None
    estimators: list[dict[str, Any]] = document["estimators"]
    return estimators


def results_digest(results_dir: Path) -> str | None:
    """SHA-256 of the stored results' JSON text (the same value write_results returned)."""
    path = results_path(results_dir)
    try:
        with gzip.open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        return None
