"""Fetching PDB entries from a local RCSB stand-in: the real 1A7G file, and every failure
typed (services/intake/structures.py)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from support.alphafold import require_af3_fixtures

from cyclotron.alphafold.structures import parse_structure
from cyclotron.services.intake.structures import (
    InvalidPdbId,
    StructureNotFound,
    UpstreamError,
    UpstreamTimeout,
    fetch_structure,
)


class _FakeRcsb(http.server.BaseHTTPRequestHandler):
    cif = b""
    release = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/download/1A7G.cif":
            self._answer(200, self.cif)
        elif self.path == "/download/5BAD.cif":
            self._answer(500, b"boom")
        elif self.path == "/download/7HNG.cif":
            self.release.wait(10)  # never answers before the client gives up
        else:
            self._answer(404, b"not found")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def rcsb() -> Iterator[str]:
    _FakeRcsb.cif = (require_af3_fixtures() / "structures" / "1A7G.cif").read_bytes()
    _FakeRcsb.release.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeRcsb)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    _FakeRcsb.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_returns_the_real_file_and_it_parses(rcsb: str) -> None:
    data = fetch_structure("1a7g", rcsb, timeout=5)
    assert data == (require_af3_fixtures() / "structures" / "1A7G.cif").read_bytes()
    assert parse_structure(data, "1A7G.cif", source="rcsb", pdb_id="1A7G")["num_residues"] == 82


@pytest.mark.parametrize(
    ("pdb_id", "error"),
    [("9ZZZ", StructureNotFound), ("5BAD", UpstreamError), ("7HNG", UpstreamTimeout)],
)
def test_fetch_failures_are_typed(rcsb: str, pdb_id: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        fetch_structure(pdb_id, rcsb, timeout=0.5)


def test_fetch_unreachable_server_is_upstream_error() -> None:
    with socket.socket() as sock:  # bound, then released: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamError, match="unreachable"):
        fetch_structure("1A7G", f"http://127.0.0.1:{port}", timeout=2)


@pytest.mark.parametrize("pdb_id", ["A7G1", "1A7", "1A7GX", "1A-G", "../1"])
def test_malformed_ids_are_refused_before_any_request(pdb_id: str) -> None:
    with pytest.raises(InvalidPdbId, match="invalid PDB id"):
        fetch_structure(pdb_id, "http://127.0.0.1:9", timeout=0.1)
