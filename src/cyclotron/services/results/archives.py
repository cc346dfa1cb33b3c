"""ZIP archives of job directories, streamed with bounded memory (ZIP64 when needed)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from zipstream import ZIP_DEFLATED, ZipStream

CHUNK = 1024 * 1024


def regular_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Every regular file under ``root`` (symlinks neither followed nor listed), sorted."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            if path.is_symlink() or not path.is_file():
                continue
            yield path, path.relative_to(root).as_posix()


def read_segment(path: Path, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """``length`` bytes of a file from ``start``, read when iterated, in bounded chunks.

    Without ``length``, the file as it is when opened: one still growing is cut at the size
    seen then. A file that cannot be opened gives nothing, and so does one reached through a
    link: a running task may have turned a folder of its own into a link since ``path`` was
    checked, and the server must not serve what that link points at.
    """
    try:
        handle = open(path, "rb", opener=_open_unlinked)  # noqa: SIM115 - closed in finally
    except OSError:
        return
    try:
        remaining = os.fstat(handle.fileno()).st_size - start if length is None else length
        handle.seek(start)
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _open_unlinked(path: str, flags: int) -> int:
    """Open ``path`` (absolute) only where no part of it is a link."""
    descriptor = os.open(path, flags | os.O_NOFOLLOW)
    try:
        opened = os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return descriptor  # no /proc to ask: the final component was checked
    if opened != os.path.abspath(path):
        os.close(descriptor)
        raise OSError(errno.ELOOP, "reached through a link", path)
    return descriptor


def zip_directory(root: Path) -> Iterator[bytes]:
    """Stream a ZIP of ``root``'s regular files, entry names relative to it."""
    return zip_members(regular_files(root))


def zip_members(members: Iterable[tuple[Path, str]]) -> Iterator[bytes]:
    """Stream a ZIP of the given files under the given entry names."""
    archive = ZipStream(compress_type=ZIP_DEFLATED, compress_level=6, sized=False)
    for path, name in members:
        archive.add(read_segment(path), name)
    yield from archive
