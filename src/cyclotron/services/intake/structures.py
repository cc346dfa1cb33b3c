"""Structures as AlphaFold Server jobs (spec/native.md §8): an uploaded PDB or mmCIF file, or
an entry fetched from the AlphaFold 3 service's RCSB-like server (``rcsb_url``, within its
``fetch_timeout``). Both need an AlphaFold 3 service: ``NotFound`` without one.

Errors, besides the parser's ``InputError``s (the structure routes map them to HTTP in one
place):

    InputError
    └── InvalidPdbId                 not 4 alphanumerics starting with a digit    → 422
    NotFound
    └── StructureNotFound            the server answers 404                       → 404
    CyclotronError
    ├── UpstreamTimeout              no answer within the timeout                 → 504
    └── UpstreamError                another status, a network failure, or a file
                                     the parser cannot read                       → 502
"""

from __future__ import annotations

import re
from typing import Any

from cyclotron.alphafold.structures import EXTENSIONS, parse_structure
from cyclotron.errors import CyclotronError, InputError, NotFound
from cyclotron.services.core import Core
from cyclotron.services.results.alphafold import alphafold_plugin, alphafold_service

__all__ = [
    "EXTENSIONS",
    "InvalidPdbId",
    "StructureNotFound",
    "UpstreamError",
    "UpstreamTimeout",
    "fetch_entry",
    "fetch_structure",
    "normalise_pdb_id",
    "parse_uploaded",
    "require_structures",
]

PDB_ID = re.compile(r"^[0-9][A-Za-z0-9]{3}$")


class InvalidPdbId(InputError):
    """A PDB id that is not 4 alphanumerics starting with a digit."""


class StructureNotFound(NotFound):
    """The structure server does not know the id."""


class UpstreamTimeout(CyclotronError):
    """The structure server did not answer in time."""


class UpstreamError(CyclotronError):
    """The structure server failed, could not be reached, or sent an unreadable file."""


def require_structures(core: Core) -> None:
    """``NotFound`` unless an AlphaFold 3 service is configured (checked before any upload)."""
    alphafold_service(core)


def parse_uploaded(data: bytes, filename: str) -> dict[str, Any]:
    """The AlphaFold Server job of an uploaded file; an ``InputError`` if it cannot be one."""
    return parse_structure(data, filename)


def fetch_entry(core: Core, pdb_id: str) -> dict[str, Any]:
    """The AlphaFold Server job of a PDB entry, fetched from the AlphaFold 3 service's server."""
    plugin = alphafold_plugin(core)
    entry = normalise_pdb_id(pdb_id)
    data = fetch_structure(entry, plugin.rcsb_url, plugin.fetch_timeout)
    try:
        return parse_structure(data, f"{entry}.cif", source="rcsb", pdb_id=entry)
    except InputError as exc:  # the server's answer, not the request, is at fault
        raise UpstreamError(f"structure server sent an unreadable file: {exc.message}") from exc


def normalise_pdb_id(pdb_id: str) -> str:
    """The upper-case id; ``InvalidPdbId`` unless 4 alphanumerics starting with a digit."""
    if not PDB_ID.match(pdb_id):
        raise InvalidPdbId(
            f"invalid PDB id {pdb_id!r}: expected 4 letters or digits starting with a digit"
        )
    return pdb_id.upper()


def fetch_structure(pdb_id: str, base_url: str, timeout: float = 30.0) -> bytes:
    """The mmCIF bytes of ``{base_url}/download/{ID}.cif``, translating transport failures."""
    import httpx  # here: a server that never fetches a structure does not load it

    url = f"{base_url.rstrip('/')}/download/{normalise_pdb_id(pdb_id)}.cif"
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(f"structure server did not answer within {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"structure server unreachable: {exc}") from exc
    if response.status_code == 404:
        raise StructureNotFound(f"PDB entry {pdb_id.upper()} not found")
    if response.status_code != 200:
        raise UpstreamError(f"structure server answered {response.status_code}")
    return response.content
