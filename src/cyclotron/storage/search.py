"""Search of jobs by a substring of their name, narrowed by the database's own index.

The answer is always the same as a scan's: case-insensitive, ``%`` and ``_`` literal
(``lower(name) LIKE``). The index only narrows the rows that test reads. On SQLite the
index is an FTS5 trigram table over the names (``jobs_search``, kept by triggers); on
PostgreSQL a pg_trgm GIN index on ``lower(name)`` serves the LIKE itself. Both need at least
three characters: a shorter string, or a database made without them (migration 0007 says
why), reads the table, as every search did before.
"""

from __future__ import annotations

import logging
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session

from cyclotron.storage.tables import JobRow

log = logging.getLogger(__name__)

SEARCH_TABLE = "jobs_search"  # SQLite (FTS5 keeps shadow tables named jobs_search_*)
TRIGRAM_INDEX = "ix_jobs_name_trgm"  # PostgreSQL
MIN_INDEXED = 3  # trigram indexes cannot narrow shorter strings

_indexed: WeakKeyDictionary[Engine, bool] = WeakKeyDictionary()


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """For Alembic's comparisons: the search index is not among the declared tables."""
    if type_ == "table" and name is not None and name.startswith(SEARCH_TABLE):
        return False
    return not (type_ == "index" and name == TRIGRAM_INDEX)


def search_index_present(connection: Connection) -> bool:
    if connection.dialect.name == "sqlite":
        found = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (SEARCH_TABLE,)
        ).scalar()
    else:
        found = connection.exec_driver_sql(
            "SELECT 1 FROM pg_indexes WHERE indexname = %(name)s", {"name": TRIGRAM_INDEX}
        ).scalar()
    return found is not None


def _has_index(session: Session) -> bool:
    engine = session.get_bind().engine
    if engine not in _indexed:
        _indexed[engine] = search_index_present(session.connection())
    return _indexed[engine]


def _escaped(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def name_contains(session: Session, term: str) -> list[ColumnElement[bool]]:
    """Clauses that keep the jobs whose name contains ``term``, case-insensitively."""
    like = func.lower(JobRow.name).like(f"%{_escaped(term).lower()}%", escape="\\")
    if session.get_bind().dialect.name != "sqlite" or len(term) < MIN_INDEXED:
        return [like]
    if not _has_index(session):
        return [like]
    # A phrase of the term's trigrams: a superset of the LIKE's rows (the tokenizer folds
    # case as lower() does and more), which the LIKE then decides.
    phrase = '"' + term.replace('"', '""') + '"'
    matches: Select[int] = (
        select(literal_column("rowid", Integer))
        .select_from(text(SEARCH_TABLE))
        .where(literal_column(SEARCH_TABLE).op("MATCH")(phrase))
    )
    return [JobRow.number.in_(matches), like]
