"""A job's files as the native face lists and serves them: sizes, SHA-256, safe paths."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from cyclotron.errors import InputError, NotFound

BOOKKEEPING = ".cyclotron"  # never listed or served
_DIGESTS = "sha256.json"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str | None
    modified_at: datetime
    task_index: int | None


def _task_of(relative: PurePosixPath) -> int | None:
    parts = relative.parts
    if len(parts) >= 2 and parts[0] == "tasks" and parts[1].isdigit():
        return int(parts[1])
    if len(parts) == 2 and parts[0] == "logs" and parts[1].startswith("task-"):
        index = parts[1][5:].split(".", 1)[0]
        return int(index) if index.isdigit() else None
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(job_dir: Path, active_tasks: set[int]) -> list[FileEntry]:
    """Regular files under the job directory, sorted; files of active tasks get no digest.

    Digests are computed once per file version and remembered in the job's bookkeeping.
    """
    cache_path = job_dir / BOOKKEEPING / _DIGESTS
    try:
        cache: dict[str, list[object]] = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    entries, changed = [], False
    for dirpath, dirnames, filenames in os.walk(job_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != BOOKKEEPING)
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            relative = PurePosixPath(path.relative_to(job_dir).as_posix())
            stat = path.stat()
            task = _task_of(relative)
            digest: str | None = None
            if task not in active_tasks:
                key, version = str(relative), [stat.st_size, stat.st_mtime_ns]
                known = cache.get(key)
                if known is not None and known[:2] == version:
                    digest = str(known[2])
                else:
                    digest = _sha256(path)
                    cache[key] = [*version, digest]
                    changed = True
            entries.append(
                FileEntry(
                    path=str(relative),
                    size=stat.st_size,
                    sha256=digest,
                    modified_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                    task_index=task,
                )
            )
    if changed:
        cache_path.parent.mkdir(exist_ok=True)
        temporary = cache_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(cache))
        os.replace(temporary, cache_path)
    return sorted(entries, key=lambda e: e.path)


def resolve_file(job_dir: Path, relative: str) -> Path:
    """The regular file at ``relative`` inside the job directory.

    InputError for a path that tries to leave it (or is malformed); NotFound otherwise.
    """
    if not relative or "\\" in relative or "\x00" in relative or relative.startswith("/"):
        raise InputError("invalid file path")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InputError("invalid file path")
    if parts[0] == BOOKKEEPING:
        raise NotFound(f"no file {relative}")
    path = job_dir.joinpath(*parts)
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(f"no file {relative}") from None
    if not resolved.is_relative_to(job_dir.resolve()) or not resolved.is_file():
        raise NotFound(f"no file {relative}")
    return resolved
