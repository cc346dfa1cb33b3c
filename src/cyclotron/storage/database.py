"""Engines and the one transaction boundary."""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from cyclotron.errors import ConfigError

log = logging.getLogger(__name__)

_WRITE_OPTION = "cyclotron_write"
EVENTS_WRITTEN = "cyclotron_events_written"  # session.info key: job ids with new events
LISTEN_RETRY_SECONDS = 1.0  # a listener whose connection failed connects again after this
LISTEN_STOP_SECONDS = 1.0  # at most this long for a listener to notice it must stop


def normalise_url(url: str) -> URL:
    """Accept plain ``postgresql://`` and use psycopg 3 for it."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL inside
        raise ConfigError(f"invalid database URL: {exc.__class__.__name__}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {parsed.get_backend_name()!r}")
    return parsed


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front, so a read-then-write never dies on a busy upgrade.
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A pooled connection the server closed (a restart, a terminated backend) is
        # replaced before use. A ping per checkout would find it too, at the cost of a
        # round trip per transaction (a tenth of a millisecond of a list page): the server
        # tells a connection it closes, so the socket is read first, and pinged only if
        # something came.
        if not _quiet(dbapi_connection.fileno()):
            try:
                engine.dialect.do_ping(dbapi_connection)
            except Exception as exc:
                raise DisconnectionError("the database closed this connection") from exc


def _quiet(fd: int) -> bool:
    """Whether nothing waits to be read on an idle connection's socket (a closed one reads
    as its end)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return not poller.poll(0)


class Database:
    """An engine plus read and write sessions; ``transaction()`` is the only way to commit."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.kind = self.url.get_backend_name()
        if self.kind == "sqlite":
            if self.url.database and self.url.database != ":memory:":
                path = Path(self.url.database)
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                # Created private: SQLite gives its journal files the same mode.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            _configure_sqlite(self.engine)
        else:
            self.engine = create_engine(self.url, pool_size=10, max_overflow=20)
            _configure_postgresql(self.engine)
        self._sqlite_writer = threading.Lock() if self.kind == "sqlite" else None
        self._committed_listeners: list[Callable[[set[str]], None]] = []
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(**{_WRITE_OPTION: True}), expire_on_commit=False
        )

    def files(self) -> tuple[Path, ...]:
        """The files of a SQLite database (with its journal), for their permissions."""
        if self.kind != "sqlite" or not self.url.database or self.url.database == ":memory:":
            return ()
        main = Path(self.url.database).resolve()
        return (main, Path(f"{main}-wal"), Path(f"{main}-shm"))

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler for whole milliseconds. Threads of this process queue on a
        # Python lock instead, which hands over at once; other processes still meet the
        # busy timeout.
        serialise = write and self._sqlite_writer is not None
        if serialise:
            assert self._sqlite_writer is not None
            self._sqlite_writer.acquire()
        session = (self._write if write else self._read)()
        try:
            yield session
            session.commit()
            touched: set[str] = session.info.pop(EVENTS_WRITTEN, set())
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if serialise:
                assert self._sqlite_writer is not None
                self._sqlite_writer.release()
        if touched:
            for listener in self._committed_listeners:
                listener(touched)

    @contextmanager
    def statement_read(self) -> Iterator[Connection]:
        """A connection for a read that is one statement, in that statement's own snapshot:
        no transaction around it (on PostgreSQL, BEGIN and COMMIT are a round trip each,
        which cost a list page a tenth of a millisecond)."""
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def on_events_committed(self, listener: Callable[[set[str]], None]) -> None:
        """Call ``listener`` with the ids of the jobs whose events a transaction committed."""
        self._committed_listeners.append(listener)

    def notify(self, channel: str, payload: str) -> None:
        """Tell every process listening on ``channel`` (PostgreSQL's NOTIFY); nothing on
        SQLite, whose one server process is told in memory."""
        if self.kind != "postgresql":
            return
        with self.engine.connect() as conn:
            notice = {"channel": channel, "payload": payload}
            conn.execute(text("SELECT pg_notify(:channel, :payload)"), notice)
            conn.commit()

    def listen(self, channel: str, callback: Callable[[str | None], None]) -> Listener | None:
        """Call ``callback`` with each payload notified on ``channel``, from a thread of its
        own (and with None after each (re)connection: notifications sent while it was away
        are lost); None on SQLite."""
        if self.kind != "postgresql":
            return None
        listener = Listener(self, channel, callback)
        listener.start()
        return listener

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


class Listener:
    """One PostgreSQL connection of its own, outside the pool, that LISTENs on a channel."""

    def __init__(self, db: Database, channel: str, callback: Callable[[str | None], None]) -> None:
        self._db = db
        self._channel = channel
        self._callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening; returns once the connection is closed (or after a few seconds)."""
        self._stop.set()
        self._thread.join(timeout=LISTEN_STOP_SECONDS + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the database went away: connect again
                if not self._stop.is_set():
                    log.warning("listening on %s failed (%s); retrying", self._channel, exc)
            self._stop.wait(LISTEN_RETRY_SECONDS)

    def _listen(self) -> None:
        dialect = self._db.engine.dialect
        args, kwargs = dialect.create_connect_args(self._db.engine.url)
        conn = dialect.connect(*args, **kwargs)
        try:
            conn.autocommit = True
            conn.execute(f'LISTEN "{self._channel}"')
            self._callback(None)
            while not self._stop.is_set():
                for note in conn.notifies(timeout=LISTEN_STOP_SECONDS):
                    self._callback(note.payload)
        finally:
            conn.close()
