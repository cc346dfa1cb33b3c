"""Request and response conventions of the YAPTIDE face (yaptide.md §1)."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Request, Response

from cyclotron.errors import InputError, PayloadTooLarge

GZIP_ABOVE = 1024
# Above this, the fastest level: a 1,000-task status (200 KB) compresses six times faster
# than at level 5, to a few percent more bytes.
GZIP_FAST_ABOVE = 64 * 1024
INTEGER = re.compile(r"^-?[0-9]{1,18}$")
NO_STORE = "no-store"
JSON_TYPE = "application/json; charset=utf-8"
MISSING_JOB_ID = "Missing job_id"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# Times already written: a job's status shows three per task, and is polled again and again
# with mostly the same times.
_WRITTEN: dict[datetime, str] = {}
_MAX_WRITTEN = 1 << 16


def http_date(moment: datetime | None) -> str | None:
    """``Tue, 19 Nov 2024 16:24:41 GMT`` (RFC 9110's IMF-fixdate, as ``email.utils`` writes
    it with ``usegmt``; spelt out here, and each time written once)."""
    if moment is None:
        return None
    written = _WRITTEN.get(moment)
    if written is None:
        m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
        written = (
            f"{_DAYS[m.weekday()]}, {m.day:02d} {_MONTHS[m.month - 1]} {m.year:04d} "
            f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} GMT"
        )
        if len(_WRITTEN) >= _MAX_WRITTEN:
            _WRITTEN.clear()
        _WRITTEN[moment] = written
    return written


def fast_json(body: Mapping[str, Any]) -> bytes:
    """``body`` (strings, integers, lists and mappings of them) encoded as ``answer`` would,
    in Rust: a job's status lists 1,000 tasks."""
    return orjson.dumps(body)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def answer(
    request: Request,
    body: Mapping[str, Any] | bytes,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """JSON (UTF-8, not HTML-escaped), gzip-compressed above 1 KiB when the client allows.

    ``body`` may come encoded already (``fast_json``).
    """
    if isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out = {"Cache-Control": NO_STORE, **(headers or {})}
    accepts = request.headers.get("accept-encoding", "")
    if len(data) > GZIP_ABOVE and "gzip" in accepts.lower():
        level = 1 if len(data) > GZIP_FAST_ABOVE else 5
        data = gzip.compress(data, compresslevel=level, mtime=0)
        out["Content-Encoding"] = "gzip"
        out["Vary"] = "Origin, Accept-Encoding"
    return Response(data, status_code, headers=out, media_type=JSON_TYPE)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise InputError("Body is not valid gzip") from exc
        if len(data) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    return data


async def json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says; 400 for anything else."""
    data = await read_body(request, limit)
    if not data.strip():
        raise InputError("No JSON in body")
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("No JSON in body") from exc
    if not isinstance(parsed, dict):
        raise InputError("No JSON in body")
    return parsed


def require_keys(body: Mapping[str, Any], *keys: str) -> None:
    missing = [k for k in keys if body.get(k) in (None, "")]
    if missing:
        raise InputError(f"Missing keys in JSON payload: {', '.join(missing)}")


def query_int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not INTEGER.match(text):
        raise InputError(f"{name} must be an integer")
    return int(text)


def job_id_param(request: Request) -> str:
    value = request.query_params.get("job_id", "").strip()
    if not value:
        raise InputError(MISSING_JOB_ID)
    return value
