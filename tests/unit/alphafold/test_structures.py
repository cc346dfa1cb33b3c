"""PDB/mmCIF parsing of the real 1A8O and 1A7G files, and fetching from a local RCSB stand-in."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import gemmi
import pytest

from cyclotron.alphafold.structures import (
    InvalidPdbId,
    StructureNotFound,
    StructureParseError,
    UnsupportedStructureFormat,
    UpstreamError,
    UpstreamTimeout,
    fetch_structure,
    parse_structure,
)

E2_1A7G = "ATTPIIHLKGDANILKCLRYRLSKYKQLYEQVSSTWHWTCTDGKHKNAIVTLTYISTSQRDDFLNTVVIPNTVSVSTGYMTI"


def test_1a8o_pdb_one_chain_of_70_with_selenomethionine_as_met(af3_fixtures: Path) -> None:
    data = (af3_fixtures / "structures" / "1A8O.pdb").read_bytes()
    result = parse_structure(data, "1A8O.pdb")
    assert result["name"] == "1A8O" and result["source"] == "upload" and result["pdb_id"] is None
    assert result["dialect"] == "alphafoldserver" and result["version"] == 1
    assert (result["num_chains"], result["num_residues"]) == (1, 70)
    sequence = result["sequences"][0]["proteinChain"]["sequence"]
    assert len(sequence) == 70 and result["sequences"][0]["proteinChain"]["count"] == 1
    # MSE at author numbers 151, 185, 214, 215 (the chain starts at 151).
    assert [sequence[n - 151] for n in (151, 185, 214, 215)] == ["M"] * 4
    assert result["warnings"] == [
        "chain A: 4 modified residues replaced by their parents"
    ]  # 88 HOH dropped


def test_1a7g_cif_protein_kept_sulfates_reported_water_dropped(af3_fixtures: Path) -> None:
    data = (af3_fixtures / "structures" / "1A7G.cif").read_bytes()
    result = parse_structure(data, "1a7g.MMCIF", source="rcsb", pdb_id="1A7G")
    assert result["sequences"] == [{"proteinChain": {"sequence": E2_1A7G, "count": 1}}]
    assert (result["num_chains"], result["num_residues"]) == (1, 82)
    assert result["warnings"] == ["2 x ligand SO4 not included"]
    assert (result["source"], result["pdb_id"], result["name"]) == ("rcsb", "1A7G", "1A7G")


def test_identical_chains_are_grouped_with_a_count(af3_fixtures: Path, tmp_path: Path) -> None:
    structure = gemmi.read_structure(str(af3_fixtures / "structures" / "1A8O.pdb"))
    copy = structure[0]["A"].clone()
    copy.name = "B"
    structure[0].add_chain(copy)
    structure.setup_entities()
    result = parse_structure(structure.make_pdb_string().encode(), "dimer.pdb")
    assert len(result["sequences"]) == 1 and result["sequences"][0]["proteinChain"]["count"] == 2
    assert (result["num_chains"], result["num_residues"]) == (2, 140)


@pytest.mark.parametrize("filename", ["model.txt", "model.pdb.gz", "model"])
def test_other_extensions_are_refused(filename: str) -> None:
    with pytest.raises(UnsupportedStructureFormat, match="unsupported file type"):
        parse_structure(b"HEADER", filename)


@pytest.mark.parametrize(
    ("data", "filename"), [(b"not a cif", "x.cif"), (b"HEADER nothing\nEND\n", "x.pdb")]
)
def test_unreadable_or_empty_structures_are_parse_errors(data: bytes, filename: str) -> None:
    with pytest.raises(StructureParseError):
        parse_structure(data, filename)


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
def rcsb(af3_fixtures: Path) -> Iterator[str]:
    _FakeRcsb.cif = (af3_fixtures / "structures" / "1A7G.cif").read_bytes()
    _FakeRcsb.release.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeRcsb)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    _FakeRcsb.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_fetch_returns_the_real_file_and_it_parses(rcsb: str, af3_fixtures: Path) -> None:
    data = fetch_structure("1a7g", rcsb, timeout=5)
    assert data == (af3_fixtures / "structures" / "1A7G.cif").read_bytes()
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
