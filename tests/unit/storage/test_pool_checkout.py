"""A pooled PostgreSQL connection that the server closed (a restart, a terminated backend)
is replaced at checkout: the next transaction runs on a fresh one, with no error."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from sqlalchemy import text
from support.databases import database_url

from cyclotron.storage.database import Database, _quiet


def _backend_pids(db: Database) -> set[int]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return {int(pid) for (pid,) in rows}


def test_a_connection_the_server_closed_is_replaced(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        db = Database(url)
        other = Database(url)
        try:
            with db.transaction(write=False) as session:
                pid = int(session.scalar(text("SELECT pg_backend_pid()")) or 0)
            # The pool holds that connection, idle; the server ends it.
            with other.engine.connect() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while pid in _backend_pids(other):
                assert time.monotonic() < deadline, "the backend did not end"
                time.sleep(0.01)
            with db.transaction(write=False) as session:
                now = int(session.scalar(text("SELECT pg_backend_pid()")) or 0)
            assert now != pid
        finally:
            db.dispose()
            other.dispose()


def test_a_socket_reads_as_closed_once_its_peer_closes_it() -> None:
    """What the checkout reads instead of a ping: an open, silent connection is quiet; one
    whose other end closed it is not."""
    mine, theirs = socket.socketpair()
    try:
        assert _quiet(mine.fileno())
        theirs.close()
        assert not _quiet(mine.fileno())
    finally:
        mine.close()
