"""No failed job shows the server's paths: what every test server is checked for at its end.

Every error a face shows a user comes from a job's or a task's stored ``error`` or from the
reasons in its event log (the YAPTIDE face's task errors and ``job/summary.txt``, the upload
face's ``message``, the native job detail and its progress stream). The servers of the test
suite (live ones and the unit suite's in-process core) run every failure case the suite makes,
so checking what each has stored when it stops covers them all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa

TESTS_DIR = Path(__file__).resolve().parents[1]


def server_paths(*folders: Path) -> tuple[str, ...]:
    """The absolute paths no user may read: the given folders (the server's data folder and
    configuration) and the commands the suite runs (its Python, its test doubles)."""
    paths = {str(f.resolve()) for f in folders} | {str(f) for f in folders}
    paths |= {sys.prefix, sys.base_prefix, sys.executable, str(TESTS_DIR)}
    return tuple(sorted(p for p in paths if len(p) > 1))


def shown_texts(database_url: str) -> Iterable[tuple[str, str]]:
    """(where, text) for every error and reason the server has stored for users to read."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("events"):
                return  # a server that never started
            queries = {
                "job": "SELECT id, error FROM jobs WHERE error IS NOT NULL",
                "task": "SELECT job_id, error FROM tasks WHERE error IS NOT NULL",
                "event": "SELECT job_id, data FROM events",
            }
            for kind, query in queries.items():
                for key, value in connection.execute(sa.text(query)):
                    text = value if isinstance(value, str) else json.dumps(value)
                    yield f"{kind} of job {key}", text
    finally:
        engine.dispose()


def assert_no_server_paths(database_url: str, *folders: Path) -> None:
    """Fail naming the first stored error or reason that holds one of ``server_paths``."""
    paths = server_paths(*folders)
    for where, text in shown_texts(database_url):
        leaked = [p for p in paths if p in text]
        assert not leaked, f"the {where} shows the server's path {leaked[0]!r}: {text[:300]!r}"
