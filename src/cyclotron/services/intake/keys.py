"""The cache key of a job's input: SHA-256 of its canonical JSON (spec/native.md §9).

Name, seeds, ``ntasks`` and priority are left out; for ``files`` input the files are the
sorted (name, SHA-256 of content) pairs, so their order never matters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from cyclotron.domain.cachekeys import canonical_key
from cyclotron.services.results.archives import regular_files


def files_key(
    service: str,
    plugin_version: str | None,
    contents: Mapping[str, bytes],
    primaries: int | None = None,
) -> str:
    pairs = sorted([name, hashlib.sha256(data).hexdigest()] for name, data in contents.items())
    return canonical_key(
        service, plugin_version, {"kind": "files", "files": pairs, "primaries": primaries}
    )


def directory_key(
    service: str, plugin_version: str | None, directory: Path, primaries: int | None = None
) -> str:
    """The key of a ``files`` input already on disk (uploads and staged submissions)."""
    contents = {name: path.read_bytes() for path, name in regular_files(directory)}
    return files_key(service, plugin_version, contents, primaries)
