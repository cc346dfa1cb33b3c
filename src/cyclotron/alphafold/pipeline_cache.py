"""The data-pipeline cache of an AlphaFold 3 service: the ``*_data.json`` a run wrote (its
input with MSAs and templates), stored under the input's cache key (``cache_key.py``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    stored_at: datetime


class PipelineCache:
    """One file per key; written to a temporary name and renamed, so readers never see half."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / f"{key}.json"

    def lookup(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def entry(self, key: str) -> CacheEntry | None:
        path = self.lookup(key)
        if path is None:
            return None
        stat = path.stat()
        return CacheEntry(path, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def store(self, key: str, source: Path) -> None:
        target = self._path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        os.close(handle)
        try:
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
