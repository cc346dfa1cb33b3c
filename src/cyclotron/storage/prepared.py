"""Reads run on the driver's own cursor, for the statements every poll runs.

A list page or a big job's tasks cost a few tenths of a millisecond in the database, and
several times that in SQLAlchemy's execution of them: parameters built per call, a
``Row`` per row, events. A ``Prepared`` statement is compiled once per dialect to the
driver's SQL and its parameters' order; each run binds the caller's values beside the
statement's own constants on the session's connection (its transaction, its snapshot) and
returns named tuples, each column passed through its type's result processor as SQLAlchemy
would.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

import orjson
from sqlalchemy import Select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes


@dataclass(frozen=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # names in order (qmark), or None (named)
    constants: Mapping[str, Any]
    binders: Mapping[str, Callable[[Any], Any]]
    types: tuple[Any, ...]  # of the result's columns
    row: Any  # the named tuple's class


class Prepared:
    """A ``SELECT`` with named parameters (none expanding), compiled per dialect once.
    ``binary``: PostgreSQL sends the results in binary form, which psycopg reads faster
    than text (a third less for a 1,000-task job's rows), as the same values."""

    def __init__(self, statement: Select[*tuple[Any, ...]], binary: bool = False) -> None:
        self.statement = statement
        self.binary = binary
        self._plans: dict[str, _Plan] = {}
        self._converters: dict[str, Callable[[Sequence[Any]], Any]] = {}
        self._lock = Lock()

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is not None:
            return plan
        compiled = self.statement.compile(dialect=dialect)
        columns = compiled._result_columns
        row = namedtuple("PreparedRow", [entry.keyname for entry in columns], rename=True)  # type: ignore[misc]
        binds = compiled.binds
        expanding = [name for name, bind in binds.items() if bind.expanding]
        if expanding:
            raise ValueError(f"expanding parameters are not prepared: {expanding}")
        constants = {
            name: bind.effective_value for name, bind in binds.items() if not bind.required
        }
        binders = {
            name: processor
            for name, processor in compiled._bind_processors.items()
            if callable(processor)
        }
        sql = str(compiled)
        positional = tuple(compiled.positiontup or ()) if compiled.positional else None
        if dialect.name == "postgresql":
            sql, positional = _numbered(sql)
        plan = _Plan(
            sql,
            positional,
            constants,
            binders,
            tuple(entry.type for entry in columns),
            row,
        )
        with self._lock:
            self._plans[dialect.name] = plan
        return plan

    def _converter(
        self, plan: _Plan, dialect: Dialect, cursor: Any
    ) -> Callable[[Sequence[Any]], Any]:
        """Made at the first run: a processor may depend on the type the driver names for
        its column (psycopg's numbers; its description costs a tenth of a millisecond)."""
        convert = self._converters.get(dialect.name)
        if convert is None:
            types = zip(plan.types, cursor.description, strict=True)
            convert = _converter(plan.row, [_processor(t, dialect, d[1]) for t, d in types])
            with self._lock:
                self._converters[dialect.name] = convert
        return convert

    def rows(
        self, session: Session | Connection, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """The statement's rows in the session's transaction, as named tuples."""
        fetched, convert = self.fetch(session, params)
        return list(map(convert, fetched))

    def fetch(
        self, session: Session | Connection, params: Mapping[str, Any] | None = None
    ) -> tuple[Sequence[Sequence[Any]], Callable[[Sequence[Any]], Any]]:
        """The driver's rows as they come, and the function that makes the named tuple of
        one: for a reader that keeps what it made of rows that do not change."""
        connection = session.connection() if isinstance(session, Session) else session
        plan = self._plan(connection.dialect)
        values = {**plan.constants, **(params or {})}
        for name, binder in plan.binders.items():
            values[name] = binder(values[name])
        bound: Sequence[Any] | Mapping[str, Any]
        bound = values if plan.positional is None else [values[n] for n in plan.positional]
        if connection.dialect.name == "postgresql":
            cursor = _raw_cursor(connection.connection.driver_connection, self.binary)
        else:
            cursor = connection.connection.cursor()
        try:
            cursor.execute(plan.sql, bound)
            fetched = cursor.fetchall()
            convert = self._converter(plan, connection.dialect, cursor)
        finally:
            cursor.close()
        return fetched, convert


_NAMED = re.compile(r"%\((\w+)\)s")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """psycopg's named placeholders (``%(name)s``, ``%%`` for ``%``) as PostgreSQL's own
    (``$1``) and the names in their order: psycopg converts a query once per text and keeps
    only short ones, and a list page's sums are longer; a raw cursor converts nothing."""
    order: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return f"${order.setdefault(match.group(1), len(order) + 1)}"

    parts = [_NAMED.sub(number, part) for part in sql.split("%%")]
    return "%".join(parts), tuple(order)


def _raw_cursor(connection: Any, binary: bool) -> Any:
    """A psycopg cursor that sends the query as it is."""
    import psycopg

    cursor = psycopg.RawCursor(connection)
    if binary:
        cursor.format = psycopg.pq.Format.BINARY
    return cursor


def _processor(kind: Any, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
    """The column type's result processor; SQLite's JSON text read by orjson (the
    standard library's decoder costs several times more, per row)."""
    if dialect.name == "sqlite" and isinstance(kind, sqltypes.JSON):
        return _json_text
    processor: Callable[[Any], Any] | None = kind._cached_result_processor(dialect, coltype)
    return processor


def _json_text(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def _converter(
    row: Any, processors: Sequence[Callable[[Any], Any] | None]
) -> Callable[[Sequence[Any]], Any]:
    """One function per statement that builds its named tuple from a driver's row, each
    column passed through its processor, with no loop over the columns at run time."""
    scope: dict[str, Any] = {"new": row.__new__, "row": row}
    parts = []
    for i, processor in enumerate(processors):
        if processor is None:
            parts.append(f"r[{i}]")
        else:
            scope[f"p{i}"] = processor
            parts.append(f"p{i}(r[{i}])")
    source = f"def convert(r):\n    return new(row, {', '.join(parts)})\n"
    exec(source, scope)  # the technique of collections.namedtuple
    convert: Callable[[Sequence[Any]], Any] = scope["convert"]
    return convert
