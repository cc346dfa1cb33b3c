"""A client that goes away while its upload is read is one INFO line in the server's log,
not an error with a traceback, and leaves nothing behind (the database plays no part: SQLite)."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

LINE = "INFO cyclotron.api.errors: POST /upload: the client went away"
HEAD = (
    b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: 1000000\r\n\r\n"
    b'--cut\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n1\r\n'
    b'--cut\r\nContent-Disposition: form-data; name="run.sh"; filename="run.sh"\r\n\r\n'
    b"echo half of a script that never ends"
)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_upload_cut_off_is_one_info_line_and_leaves_nothing(start_server: Any) -> None:
    live = start_server()
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        sock.sendall(HEAD)
        time.sleep(0.3)  # the server is reading the body when the client goes
    deadline = time.monotonic() + 20
    while LINE not in live.log():
        assert time.monotonic() < deadline, live.log()
        time.sleep(0.05)
    log = live.log()
    assert log.count(LINE) == 1
    assert "Traceback" not in log and "ERROR" not in log
    assert list((live.data_dir / "staging").iterdir()) == []
    with live.client() as client:
        assert client.get("/api/jobs").json()["total"] == 0
