"""ZIP archives of job directories (spec/orchestrator.md §3.2, §3.3)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from cyclotron.services.results.archives import CHUNK, read_segment, regular_files, zip_directory


def unzip(root: Path) -> dict[str, bytes]:
    data = b"".join(zip_directory(root))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {info.filename: archive.read(info) for info in archive.infolist()}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A task directory with files, sub-directories, links and a FIFO."""
    root = tmp_path / "tasks" / "0"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "run.sh").write_text("echo hi > out.txt\n")
    (root / "out.txt").write_text("hi\n")
    (root / ".env").write_text("A=1\n")
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)))
    (root / "sub" / "deeper" / "résumé.txt").write_text("ü\n", encoding="utf-8")
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours\n")
    (root / "link-out").symlink_to(secret)
    (root / "link-in").symlink_to(root / "out.txt")
    (root / "link-dir").symlink_to(root / "sub")
    (root / "link-up").symlink_to(tmp_path)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(root / "pipe")
    return root


EXPECTED = {
    ".env": b"A=1\n",
    "out.txt": b"hi\n",
    "run.sh": b"echo hi > out.txt\n",
    "sub/data.bin": bytes(range(256)),
    "sub/deeper/résumé.txt": "ü\n".encode(),
}


def test_regular_files_lists_only_regular_files_with_relative_names(workdir: Path) -> None:
    listed = list(regular_files(workdir))
    assert [name for _, name in listed] == sorted(EXPECTED)
    assert all(path == workdir / name for path, name in listed)


def test_zip_holds_every_regular_file_and_nothing_else(workdir: Path) -> None:
    assert unzip(workdir) == EXPECTED


def test_zip_entry_names_are_safe(workdir: Path) -> None:
    for name in unzip(workdir):
        assert not name.startswith("/")
        assert ".." not in name.split("/")
        assert "\\" not in name


def test_zip_stores_no_symlinked_content(workdir: Path) -> None:
    contents = unzip(workdir)
    assert b"not yours\n" not in contents.values()
    assert not any(name.startswith(("link", "dangling", "pipe")) for name in contents)


def test_zip_of_an_empty_directory_is_a_valid_empty_archive(tmp_path: Path) -> None:
    assert unzip(tmp_path) == {}


def test_large_file_is_stored_whole(tmp_path: Path) -> None:
    payload = os.urandom(2 * CHUNK + 12345)
    (tmp_path / "big.dat").write_bytes(payload)
    assert unzip(tmp_path) == {"big.dat": payload}


def test_zip_is_streamed_in_pieces(tmp_path: Path) -> None:
    (tmp_path / "big.dat").write_bytes(os.urandom(3 * CHUNK))
    pieces = list(zip_directory(tmp_path))
    assert len(pieces) > 1
    assert max(len(p) for p in pieces) < 3 * CHUNK


def test_snapshot_cuts_a_growing_file_at_the_size_seen_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    original = b"a" * (CHUNK + 10)
    path.write_bytes(original)
    chunks = read_segment(path)
    first = next(chunks)  # the file is opened here
    with path.open("ab") as handle:
        handle.write(b"b" * 5000)
    assert first + b"".join(chunks) == original


def test_snapshot_of_a_file_truncated_while_read_stops_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"a" * (CHUNK + 10))
    chunks = read_segment(path)
    first = next(chunks)
    path.write_bytes(b"")
    assert first + b"".join(chunks) == b"a" * CHUNK


def test_snapshot_of_a_vanished_file_is_empty(tmp_path: Path) -> None:
    assert list(read_segment(tmp_path / "gone.txt")) == []


def test_snapshot_of_an_empty_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert b"".join(read_segment(tmp_path / "empty")) == b""


def test_segment_reads_exactly_the_range(tmp_path: Path) -> None:
    path = tmp_path / "digits"
    path.write_bytes(b"0123456789")
    assert b"".join(read_segment(path, 2, 4)) == b"2345"
    assert b"".join(read_segment(path, 7)) == b"789"
    assert b"".join(read_segment(path, 8, 100)) == b"89"
