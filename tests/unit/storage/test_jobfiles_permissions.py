"""The data folder is closed to other users: made so, and mended at start-up."""

from __future__ import annotations

import stat
from pathlib import Path

from cyclotron.storage.database import Database
from cyclotron.storage.jobfiles import JobFiles


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_folder_and_sqlite_file_are_private(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "data")
    files.ensure()
    db = Database(f"sqlite:///{tmp_path / 'data' / 'cyclotron.db'}")
    try:
        assert files.secure(db.files()) == []
        assert mode(tmp_path / "data") == 0o700
        assert mode(files.jobs_dir) == mode(files.staging_dir) == 0o700
        assert mode(tmp_path / "data" / "cyclotron.db") == 0o600
    finally:
        db.dispose()


def test_open_permissions_are_mended_and_reported(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "data")
    files.ensure()
    secrets = tmp_path / "data" / "secrets"
    secrets.mkdir()
    database = tmp_path / "data" / "cyclotron.db"
    database.write_bytes(b"")
    for path, opened in ((files.data_dir, 0o755), (secrets, 0o755), (database, 0o644)):
        path.chmod(opened)
    fixed = files.secure((database,))
    assert len(fixed) == 3 and all("->" in line for line in fixed)
    assert (mode(files.data_dir), mode(secrets), mode(database)) == (0o700, 0o700, 0o600)
    assert files.secure((database,)) == []
