"""The Alembic migrations build exactly the schema the tables declare, on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from cyclotron import storage
from cyclotron.storage.database import Database
from cyclotron.storage.migrate import current_revision, head_revision, upgrade
from cyclotron.storage.search import include_object
from cyclotron.storage.tables import Base

MIGRATIONS = Path(storage.__file__).parent / "migrations" / "versions"
NEWEST_REVISION = max(script.name[:4] for script in MIGRATIONS.glob("0*.py"))


def test_migrations_match_the_tables(db_url: str) -> None:
    db = Database(db_url)
    try:
        upgrade(db)
        upgrade(db)  # applying again at the next start changes nothing
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_object": include_object}
            )
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        assert current_revision(db) == NEWEST_REVISION
    finally:
        db.dispose()


def test_the_newest_revision_read_from_the_files_is_alembics() -> None:
    """A start skips Alembic when the database is at this revision, so it must be Alembic's."""
    scripts = ScriptDirectory(str(MIGRATIONS.parent))
    assert head_revision() == scripts.get_current_head() == NEWEST_REVISION


INSERT_JOB = text(
    "INSERT INTO jobs (id, owner_id, service, name, state, stage, priority, ntasks,"
    " created_at, updated_at, last_event_seq, yaptide_id) VALUES (:id, 1, 'x', 'x', 'PENDING',"
    " 'queued', 0, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, :yaptide_id)"
)


def test_simulations_of_accounts_move_to_their_own_owners(tmp_path: Path) -> None:
    """0005: a YAPTIDE simulation stored under account 1 belongs to account 1's owner id,
    no longer to the key-only user 1; other jobs keep their owners."""
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(db, "0004")
        with db.engine.begin() as connection:
            for job_id, yaptide_id in (("a" * 32, "sim-1"), ("b" * 32, None)):
                connection.execute(INSERT_JOB, {"id": job_id, "yaptide_id": yaptide_id})
        upgrade(db)
        with db.engine.connect() as connection:
            owners = dict(connection.execute(text("SELECT id, owner_id FROM jobs")).all())
        assert owners == {"a" * 32: 1_000_000_001, "b" * 32: 1}
    finally:
        db.dispose()
