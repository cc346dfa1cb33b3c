"""``POST /api/structure/parse`` and ``GET /api/structure/fetch/{pdb_id}`` (spec/native.md §8):
a PDB or mmCIF file, uploaded or fetched from the AlphaFold 3 service's ``rcsb_url``, turned
into an AlphaFold Server job. Both answer 404 unless an AlphaFold 3 service is configured.

The upload is read from the request stream as it arrives, so a file above the limit is refused
(413) after at most one chunk past it, and at once when the declared ``Content-Length`` already
says so; only the ``file`` part is kept, in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.multipart import PartReader, disposition_params
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute
from cyclotron.api.native.routes import CallerDep
from cyclotron.api.native.schemas import MessagePublic, error_responses
from cyclotron.errors import InputError
from cyclotron.services.intake.structures import (
    EXTENSIONS,
    InvalidPdbId,
    UpstreamError,
    UpstreamTimeout,
    fetch_entry,
    parse_uploaded,
    require_structures,
)

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

MAX_STRUCTURE_BYTES = 50 * 1024 * 1024
# Room for the boundaries, part headers and small fields around the file in the body.
MULTIPART_SLACK = 64 * 1024
FILE_FIELD = "file"
_FILE_LOC = ("body", FILE_FIELD)


class ChainPublic(BaseModel):
    sequence: str
    count: int


class StructureParseResultPublic(BaseModel):
    """Polymer chains of the structure's first model, as an AlphaFold Server job."""

    name: str
    sequences: list[dict[str, ChainPublic]]
    dialect: str
    version: int
    source: str
    pdb_id: str | None
    num_chains: int
    num_residues: int
    warnings: list[str]


def _too_large() -> NativeFaceError:
    return NativeFaceError(
        413, f"Structure file larger than the limit of {MAX_STRUCTURE_BYTES} bytes"
    )


def _missing_file() -> NativeFaceError:
    problem = {"type": "missing", "loc": list(_FILE_LOC), "msg": "Field required", "input": None}
    return NativeFaceError(422, [problem])


class _FilePart(PartReader):
    """Multipart callbacks keeping the first ``file`` part's name and bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.filename: str | None = None
        self.data = bytearray()
        self._in_file = False

    def on_headers_finished(self) -> None:
        disposition = self._headers.get("content-disposition", "")
        params = disposition_params(disposition)
        if self.filename is not None or params.get("name") != FILE_FIELD:
            return  # other fields, and a second file part, are ignored
        filename = params.get("filename")
        if filename is None:
            raise NativeFaceError.invalid(_FILE_LOC, "Expected a file upload, not a text field")
        if not filename.lower().endswith(EXTENSIONS):
            raise NativeFaceError.invalid(
                _FILE_LOC, f"unsupported file type of {filename!r}; use .pdb, .cif or .mmcif"
            )
        self.filename, self._in_file = filename, True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        if len(self.data) + (end - start) > MAX_STRUCTURE_BYTES:
            raise _too_large()
        self.data += data[start:end]

    def on_part_end(self) -> None:
        self._in_file = False


async def receive_structure(
    content_type: str | None, body: AsyncIterator[bytes]
) -> tuple[str, bytes]:
    """The file name and bytes of the ``file`` part of a multipart body, counted as they arrive."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise _missing_file()
    part = _FilePart()
    parser = MultipartParser(boundary, part.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > MAX_STRUCTURE_BYTES + MULTIPART_SLACK:
                raise _too_large()
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise NativeFaceError.invalid(("body",), f"Malformed multipart body: {exc}") from exc
    if not part.finished:
        raise NativeFaceError.invalid(
            ("body",), "Malformed multipart body: it ends before its closing boundary"
        )
    if part.filename is None:
        raise _missing_file()
    return part.filename, bytes(part.data)


def _parse_upload(data: bytes, filename: str) -> dict[str, Any]:
    try:
        return parse_uploaded(data, filename)
    except InputError as exc:
        raise NativeFaceError.invalid(_FILE_LOC, exc.message) from exc


_UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    502: {"model": MessagePublic, "description": "The structure server failed or is unreachable"},
    504: {"model": MessagePublic, "description": "The structure server did not answer in time"},
}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "/structure/parse",
    response_model=StructureParseResultPublic,
    summary="A PDB or mmCIF file (multipart field `file`) as an AlphaFold Server job",
    responses=error_responses(404, 413, 422),
    openapi_extra=_UPLOAD_BODY,
)
async def parse_upload(request: Request, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    require_structures(core)  # 404 without an AlphaFold 3 service
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_STRUCTURE_BYTES + MULTIPART_SLACK:
        raise _too_large()
    filename, data = await receive_structure(request.headers.get("content-type"), request.stream())
    return await run_in_threadpool(_parse_upload, data, filename)


@router.get(
    "/structure/fetch/{pdb_id}",
    response_model=StructureParseResultPublic,
    summary="A PDB entry fetched from the AlphaFold 3 service's structure server",
    responses={**error_responses(404, 422), **_UPSTREAM_ERRORS},
)
def fetch(pdb_id: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    try:
        return fetch_entry(core, pdb_id)  # 404 without an AlphaFold 3 service or the entry
    except InvalidPdbId as exc:
        raise NativeFaceError.invalid(("path", "pdb_id"), exc.message) from exc
    except UpstreamTimeout as exc:
        raise NativeFaceError(504, exc.message) from exc
    except UpstreamError as exc:
        raise NativeFaceError(502, exc.message) from exc
