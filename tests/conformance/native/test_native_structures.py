"""spec/native.md §8, the structure routes: ``POST /api/structure/parse`` with the real 1A8O.pdb
and 1A7G.cif (shared fixtures, README there), and ``GET /api/structure/fetch/{pdb_id}`` from a
local HTTP server standing in for RCSB. It serves the real 1A7G.cif, answers 404 for ids it
does not know, never answers in time for 9SLO, fails with 500 for 5ERR and sends an unreadable
file for 2BAD. The live servers' AlphaFold 3 service points ``rcsb_url`` at it with a 1 s
``fetch_timeout``; a server without that service has neither route.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from native_support import ENV
from support.alphafold import require_af3_fixtures
from support.live import serving

E2_1A7G = "ATTPIIHLKGDANILKCLRYRLSKYKQLYEQVSSTWHWTCTDGKHKNAIVTLTYISTSQRDDFLNTVVIPNTVSVSTGYMTI"
LIMIT = 50 * 1024 * 1024
FETCH_TIMEOUT = 1.0
SLOW_ID, FAILING_ID, UNREADABLE_ID = "9SLO", "5ERR", "2BAD"


class _FakeRcsb(http.server.BaseHTTPRequestHandler):
    """``/download/<ID>.cif`` as files.rcsb.org serves it, plus the failure cases."""

    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        if self.path == "/download/1A7G.cif":
            self._answer(200, (require_structures() / "1A7G.cif").read_bytes())
        elif self.path == f"/download/{SLOW_ID}.cif":
            time.sleep(FETCH_TIMEOUT + 2)  # the server's fetch has given up by then
            self._answer(200, b"too late")
        elif self.path == f"/download/{FAILING_ID}.cif":
            self._answer(500, b"Internal Server Error")
        elif self.path == f"/download/{UNREADABLE_ID}.cif":
            self._answer(200, b"<html>maintenance</html>")
        else:
            self._answer(404, b"Not Found")

    def _answer(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client left (the slow case)

    def log_message(self, format: str, *args: object) -> None:
        pass


@functools.cache
def fake_rcsb_url() -> str:
    """The stand-in's base URL; started once, on a daemon thread, when first needed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeRcsb)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def __getattr__(name: str) -> Any:
    """``CONFIG``, read by the ``server`` fixture, names the stand-in started on that read."""
    if name == "CONFIG":
        service = {
            "plugin": "alphafold3",
            "command": "true",
            "rcsb_url": fake_rcsb_url(),
            "fetch_timeout": FETCH_TIMEOUT,
        }
        return {"services": {"alphafold3": service}}
    raise AttributeError(name)


def require_structures() -> Path:
    return require_af3_fixtures() / "structures"


def upload(client: httpx.Client, filename: str, data: bytes) -> httpx.Response:
    return client.post("/api/structure/parse", files={"file": (filename, data)})


def assert_invalid(response: httpx.Response, loc: list[str]) -> str:
    """A 422 in FastAPI's list form for ``loc``; its message."""
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc and problem["type"] == "value_error"
    message: str = problem["msg"]
    return message


# Parse --------------------------------------------------------------------------------------
def test_1a8o_pdb_is_one_chain_of_70_with_selenomethionine_as_met(client: httpx.Client) -> None:
    response = upload(client, "1A8O.pdb", (require_structures() / "1A8O.pdb").read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["source"], body["pdb_id"]) == ("1A8O", "upload", None)
    assert (body["dialect"], body["version"]) == ("alphafoldserver", 1)
    assert (body["num_chains"], body["num_residues"]) == (1, 70)
    [entity] = body["sequences"]
    sequence = entity["proteinChain"]["sequence"]
    assert len(sequence) == 70 and entity["proteinChain"]["count"] == 1
    # MSE at author numbers 151, 185, 214 and 215; the chain starts at 151.
    assert [sequence[n - 151] for n in (151, 185, 214, 215)] == ["M"] * 4
    assert body["warnings"] == ["chain A: 4 modified residues replaced by their parents"]


def test_1a7g_cif_with_an_upper_case_extension(client: httpx.Client) -> None:
    response = upload(client, "1A7G.CIF", (require_structures() / "1A7G.cif").read_bytes())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sequences"] == [{"proteinChain": {"sequence": E2_1A7G, "count": 1}}]
    assert (body["num_chains"], body["num_residues"]) == (1, 82)
    assert (body["name"], body["source"], body["pdb_id"]) == ("1A7G", "upload", None)
    assert body["warnings"] == ["2 x ligand SO4 not included"]  # and the 74 waters dropped


def test_mmcif_extension_is_accepted(client: httpx.Client) -> None:
    response = upload(client, "e2.mmcif", (require_structures() / "1A7G.cif").read_bytes())
    assert response.status_code == 200, response.text
    assert response.json()["num_residues"] == 82


def test_other_extension_is_422_in_list_form(client: httpx.Client) -> None:
    message = assert_invalid(upload(client, "x.txt", b"HEADER\n"), ["body", "file"])
    assert "x.txt" in message and ".pdb" in message


def test_unparseable_pdb_is_422_in_list_form(client: httpx.Client) -> None:
    response = upload(client, "junk.pdb", b"this is not a structure\n" * 10)
    assert "junk.pdb" in assert_invalid(response, ["body", "file"])


def test_missing_file_field_is_422(client: httpx.Client) -> None:
    for response in (
        client.post("/api/structure/parse", files={"upload": ("1A8O.pdb", b"HEADER\n")}),
        client.post("/api/structure/parse", data={"file": "1A8O.pdb"}),
        client.post("/api/structure/parse"),
    ):
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["body", "file"]


def _oversized_parts(boundary: str) -> Iterator[bytes]:
    """A multipart body whose ``file`` is 51 MiB, in 1 MiB pieces."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdb"'
        f"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = b"REMARK" + b" " * (1024 * 1024 - 7) + b"\n"
    for _ in range(51):
        yield block
    yield f"\r\n--{boundary}--\r\n".encode()


def test_upload_above_50_mib_is_413_and_the_server_goes_on(client: httpx.Client) -> None:
    big = b"REMARK" + b" " * (LIMIT + 1024 * 1024 - 6)  # 51 MiB, Content-Length declared
    declared = upload(client, "big.pdb", big)
    assert declared.status_code == 413, declared.text
    assert str(LIMIT) in declared.json()["detail"]
    boundary = "structure-boundary"
    streamed = client.post(  # no Content-Length: counted as it arrives
        "/api/structure/parse",
        content=_oversized_parts(boundary),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert streamed.status_code == 413, streamed.text
    assert "content-length" not in streamed.request.headers
    after = upload(client, "1A8O.pdb", (require_structures() / "1A8O.pdb").read_bytes())
    assert after.status_code == 200 and after.json()["num_residues"] == 70


# Fetch --------------------------------------------------------------------------------------
def test_fetch_1a7g_from_the_structure_server(client: httpx.Client) -> None:
    fetched = client.get("/api/structure/fetch/1a7g")
    assert fetched.status_code == 200, fetched.text
    body = fetched.json()
    assert (body["source"], body["pdb_id"], body["name"]) == ("rcsb", "1A7G", "1A7G")
    assert "/download/1A7G.cif" in _FakeRcsb.paths
    parsed = upload(client, "1A7G.cif", (require_structures() / "1A7G.cif").read_bytes()).json()
    assert body["sequences"] == parsed["sequences"]
    assert body["sequences"] == [{"proteinChain": {"sequence": E2_1A7G, "count": 1}}]
    assert (body["num_chains"], body["num_residues"], body["warnings"]) == (
        parsed["num_chains"],
        parsed["num_residues"],
        parsed["warnings"],
    )


@pytest.mark.parametrize("pdb_id", ["12345", "1A7", "1A7-"])
def test_fetch_of_a_malformed_id_is_422_without_asking_upstream(
    client: httpx.Client, pdb_id: str
) -> None:
    before = len(_FakeRcsb.paths)
    response = client.get(f"/api/structure/fetch/{pdb_id}")
    assert pdb_id in assert_invalid(response, ["path", "pdb_id"])
    assert len(_FakeRcsb.paths) == before  # the stand-in received no request


def test_fetch_of_an_unknown_entry_is_404(client: httpx.Client) -> None:
    response = client.get("/api/structure/fetch/0zzz")
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "PDB entry 0ZZZ not found"}
    assert "/download/0ZZZ.cif" in _FakeRcsb.paths


def test_fetch_without_an_answer_in_time_is_504(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.get(f"/api/structure/fetch/{SLOW_ID}")
    assert response.status_code == 504, response.text
    assert isinstance(response.json()["detail"], str)
    assert time.monotonic() - started < FETCH_TIMEOUT + 2  # it did not wait for the answer


@pytest.mark.parametrize("pdb_id", [FAILING_ID, UNREADABLE_ID])
def test_fetch_of_a_failing_or_unreadable_answer_is_502(client: httpx.Client, pdb_id: str) -> None:
    response = client.get(f"/api/structure/fetch/{pdb_id}")
    assert response.status_code == 502, response.text
    assert isinstance(response.json()["detail"], str)


# Without an AlphaFold 3 service --------------------------------------------------------------
def test_routes_absent_without_an_alphafold3_service(tmp_path: Path) -> None:
    config = {"services": {"example": {"plugin": "script"}}}
    with serving("sqlite", tmp_path, config, ENV) as live, live.client() as client:
        for response in (
            client.post("/api/structure/parse", files={"file": ("1A8O.pdb", b"HEADER\n")}),
            client.get("/api/structure/fetch/1A7G"),
        ):
            assert response.status_code == 404, response.text
            assert isinstance(response.json()["detail"], str)
