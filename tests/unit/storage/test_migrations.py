"""The Alembic migrations build exactly the schema the tables declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cyclotron.storage.database import Database
from cyclotron.storage.migrate import current_revision, upgrade
from cyclotron.storage.tables import Base


def test_migrations_match_the_tables(db_url: str) -> None:
    db = Database(db_url)
    try:
        upgrade(db)
        upgrade(db)  # applying again at the next start changes nothing
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        assert current_revision(db) == "0004"
    finally:
        db.dispose()
