"""Apply the Alembic migrations (at start-up and by ``cyclotron db upgrade``).

Alembic (with Mako and Pygments under it, some 10 MiB of a server's memory) is imported only
when there is something to apply: a database already at the newest revision, as at every
start after the first, is recognised by reading ``alembic_version`` and the revision lines of
the migration files.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect

from cyclotron.storage.database import Database
from cyclotron.storage.search import search_index_present

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^revision = "([^"]+)"$', re.MULTILINE)
_PARENT = re.compile(r'^down_revision = (?:None|"([^"]+)")$', re.MULTILINE)


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest migration's revision, read from the files as text; None unless each file
    states one revision and one parent and they make a single line (Alembic decides then)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found, parent = _REVISION.findall(text), _PARENT.findall(text)
        if len(found) != 1 or len(parent) != 1:
            return None
        revisions.add(found[0])
        parents.update(p for p in parent if p)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _at_head(connection: Connection) -> bool:
    head = head_revision()
    if head is None or not inspect(connection).has_table("alembic_version"):
        return False
    stored = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return [row[0] for row in stored] == [head]


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run on every start."""
    with db.engine.begin() as connection:
        if revision != "head" or not _at_head(connection):
            from alembic import command

            config = alembic_config(db)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        if revision == "head" and not search_index_present(connection):
            log.warning(
                "job search reads the whole jobs table: the database has no index over job "
                "names (docs/deployment.md says how to add it)"
            )


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
