"""A job's files and results on the native face: listing, single files with Range, ZIP."""

from __future__ import annotations

import mimetypes
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep
from cyclotron.api.native.errors import NativeFaceError, NativeFaceRoute
from cyclotron.api.native.routes import CallerDep, RefDep
from cyclotron.api.native.schemas import error_responses
from cyclotron.api.native.status import job_status
from cyclotron.domain.records import Caller, JobRecord
from cyclotron.errors import ConflictError, InputError
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.results.archives import read_segment, zip_members
from cyclotron.services.results.reads import archive_members, completed_job, job_file, job_files

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.get(
    "/jobs/{id}/files",
    summary="Every file of the job, with size and SHA-256",
    responses=error_responses(404, 410),
)
async def files(core: CoreDep, caller: CallerDep, ref: RefDep) -> dict[str, Any]:
    job, entries = await run_in_threadpool(job_files, core, caller, ref)
    return {
        "job_id": job.id,
        "total_size": sum(e.size for e in entries),
        "files": [
            {
                "path": e.path,
                "size": e.size,
                "sha256": e.sha256,
                "modified_at": e.modified_at.isoformat().replace("+00:00", "Z"),
                "task_index": e.task_index,
            }
            for e in entries
        ],
    }


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of one satisfiable range; None for several ranges (whole file)."""
    if "," in header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        raise NativeFaceError(416, "malformed Range")
    first_text, last_text = match.groups()
    if first_text == "":
        first, last = max(0, size - int(last_text)), size - 1
    else:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        raise NativeFaceError(416, "Range not satisfiable")
    return first, last


_ANY_CONTENT = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


@router.get(
    "/jobs/{id}/files/{path:path}",
    summary="One file, with Range support",
    response_class=Response,
    responses={
        200: {"content": _ANY_CONTENT, "description": "The file; its type from the extension"},
        206: {"content": _ANY_CONTENT, "description": "One range of the file"},
        304: {"description": "Not modified (If-None-Match)"},
        416: {"description": "Range not satisfiable; Content-Range: bytes */size"},
        **error_responses(400, 404, 410),
    },
)
async def file(
    path: str, request: Request, core: CoreDep, caller: CallerDep, ref: RefDep
) -> Response:
    try:
        _, found = await run_in_threadpool(job_file, core, caller, ref, path)
    except InputError as exc:
        raise NativeFaceError(400, exc.message) from None  # a bad path is 400 on this route
    stat = found.path.stat()
    size = stat.st_size
    etag = f'"sha256-{found.sha256}"' if found.sha256 else f'W/"{size}-{stat.st_mtime_ns}"'
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media = mimetypes.guess_type(found.path.name)[0] or "application/octet-stream"
    wanted = request.headers.get("range")
    if wanted:
        try:
            bounds = _byte_range(wanted, size)
        except NativeFaceError:
            return Response(
                status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}
            )
        if bounds is not None:
            first, last = bounds
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            headers["Content-Length"] = str(last - first + 1)
            return StreamingResponse(
                read_segment(found.path, first, last - first + 1), 206, headers, media_type=media
            )
    headers["Content-Length"] = str(size)
    return StreamingResponse(read_segment(found.path, 0, size), 200, headers, media_type=media)


@router.get(
    "/jobs/{id}/results/download",
    summary="ZIP of input, tasks, results and logs",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "ZIP of input/, tasks/, results/ and logs/",
        },
        **error_responses(400, 404, 410),
    },
)
async def download(core: CoreDep, caller: CallerDep, ref: RefDep) -> Response:
    job = await run_in_threadpool(_completed, core, caller, ref)
    members = await run_in_threadpool(archive_members, core, job)
    return StreamingResponse(
        zip_members(members),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job.id}.zip"'},
    )


def _completed(core: Core, caller: Caller, ref: JobRef) -> JobRecord:
    try:
        return completed_job(core, caller, ref)
    except ConflictError:
        job = get_job(core, caller, ref)
        raise NativeFaceError(
            400, f"Job {job.id} is not completed (status: {job_status(job)})"
        ) from None
