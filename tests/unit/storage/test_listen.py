"""PostgreSQL notifications between processes: delivered, survived a lost connection, stopped."""

from __future__ import annotations

import queue
import time

import psycopg
from sqlalchemy import text
from support.databases import postgres_database

from cyclotron.storage.database import Database

CHANNEL = "cyclotron_test_channel"
WAIT = 30.0


def _next_payload(received: queue.Queue[str | None]) -> str | None:
    """The next payload other than a (re)connection's None."""
    deadline = time.monotonic() + WAIT
    while True:
        payload = received.get(timeout=max(0.0, deadline - time.monotonic()))
        if payload is not None:
            return payload


def _notify_until_heard(db: Database, received: queue.Queue[str | None], payload: str) -> None:
    """Notify again until heard: one sent while the listener reconnects is lost by design."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        db.notify(CHANNEL, payload)
        try:
            if received.get(timeout=0.5) == payload:
                return
        except queue.Empty:
            continue
    raise AssertionError(f"{payload!r} never heard")


def test_a_listener_hears_notifications_again_after_losing_its_connection() -> None:
    with postgres_database() as url:
        sender, receiver = Database(url), Database(url)
        received: queue.Queue[str | None] = queue.Queue()
        listener = receiver.listen(CHANNEL, received.put)
        assert listener is not None
        try:
            assert received.get(timeout=WAIT) is None  # connected
            sender.notify(CHANNEL, "first")
            assert _next_payload(received) == "first"
            with sender.engine.connect() as conn:  # what a database restart does to it
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
                    )
                )
            _notify_until_heard(sender, received, "after")
        finally:
            listener.stop()
            sender.dispose()
            receiver.dispose()
        assert _listening_connections(url) == 0


def _listening_connections(url: str) -> int:
    """Connections still listening (a closed one leaves the server a moment later)."""
    deadline = time.monotonic() + WAIT
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            count = int(row[0]) if row else 0
            if count == 0 or time.monotonic() > deadline:
                return count
            time.sleep(0.1)


def test_sqlite_has_no_listener() -> None:
    db = Database("sqlite://")
    try:
        assert db.listen(CHANNEL, lambda _: None) is None
        db.notify(CHANNEL, "nobody")  # nothing to tell: no error
    finally:
        db.dispose()
