"""The job list, ``GET /api/jobs``: the read a dashboard polls.

It costs what its page holds, whatever the jobs stored: the page, its jobs' task sums and the
total come from indexes (storage/listing.py), on the driver's cursor. Each job's entry is
kept encoded under a mark of its row and its tasks' sums (``MarkedMemo``): a later page that
finds the same mark reuses it. The endpoint takes the request alone (``NativeReadRoute``):
the key, the query and the page are read in one worker thread, with nothing for FastAPI to
solve.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import orjson
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import bearer_token
from cyclotron.api.marked import MarkedMemo, app_memo
from cyclotron.api.native.errors import NativeFaceError
from cyclotron.api.native.schemas import job_item, jobs_body, json_answer
from cyclotron.api.native.status import STATUS_STATES, states_for
from cyclotron.domain.records import JobFilter
from cyclotron.services.access.apikeys import authenticate
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import list_jobs

MAX_SEARCH = 200
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000_000  # (page - 1) × page_size stays a 64-bit integer
MAX_USER_ID = 2**63 - 1
KEPT_ITEMS = 2_000  # an entry is about 0.5 kB


def _items_memo() -> MarkedMemo[orjson.Fragment]:
    return MarkedMemo[orjson.Fragment](KEPT_ITEMS)


def _statuses(status: str | None) -> frozenset[str] | None:
    if status is None:
        return None
    words = frozenset(w.strip() for w in status.split(",") if w.strip())
    unknown = words - STATUS_STATES.keys()
    if not words or unknown:
        raise NativeFaceError.invalid(
            ("query", "status"), f"status must be among {', '.join(STATUS_STATES)}"
        )
    return words


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


# What ``jobs`` reads of the query itself, for the OpenAPI document.
LIST_QUERY = [
    _query("status", {"type": "string"}, f"Comma-separated: {', '.join(STATUS_STATES)}"),
    _query("search", {"type": "string", "maxLength": MAX_SEARCH}, "Part of the job's name"),
    _query("service", {"type": "string"}, "Only this service's jobs"),
    _query(
        "page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
        "The page, from 1",
    ),
    _query(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
        "Jobs per page",
    ),
    _query(
        "user_id",
        {"type": "integer", "minimum": 0, "maximum": MAX_USER_ID},
        "Only this user's jobs (admins)",
    ),
]


def _int(request: Request, name: str, low: int, high: int) -> int | None:
    """A query integer as FastAPI would validate ``Query(ge=low, le=high)`` (422s), or
    None when absent. Every bound is one a database's integer holds."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise NativeFaceError.invalid(
            ("query", name), "Input should be a valid integer, unable to parse string as an integer"
        ) from None
    if value < low:
        raise NativeFaceError.invalid(
            ("query", name), f"Input should be greater than or equal to {low}"
        )
    if value > high:
        raise NativeFaceError.invalid(
            ("query", name), f"Input should be less than or equal to {high}"
        )
    return value


def _jobs_page(request: Request) -> Response:
    core: Core = request.app.state.core
    caller = authenticate(core, bearer_token(request))
    query = request.query_params
    words = _statuses(query.get("status"))
    search = query.get("search")
    if search is not None and len(search) > MAX_SEARCH:
        raise NativeFaceError.invalid(
            ("query", "search"), f"String should have at most {MAX_SEARCH} characters"
        )
    page = _int(request, "page", 1, MAX_PAGE)
    page_size = _int(request, "page_size", 1, MAX_PAGE_SIZE)
    page = 1 if page is None else page
    page_size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    user_id = _int(request, "user_id", 0, MAX_USER_ID)
    where = JobFilter(
        owner_id=user_id if caller.admin else None,
        states=states_for(words) if words is not None else None,
        service=query.get("service"),
        name_contains=search,
    )
    memo = app_memo(request.app, "native_list_items", _items_memo)
    kept: dict[str, orjson.Fragment] = {}

    def held(job_id: str, mark: Hashable) -> bool:
        item = memo.get(job_id, mark)
        if item is not None:
            kept[job_id] = item
        return item is not None

    offset = (page - 1) * page_size
    found = list_jobs(core, caller, where, offset=offset, limit=page_size, held=held)
    items = []
    for job_id, job, mark in zip(found.ids, found.items, found.marks, strict=True):
        if job is None:
            items.append(kept[job_id])
        else:
            item = job_item(job)
            memo.put(job_id, mark, item)
            items.append(item)
    return json_answer(jobs_body(items, found.total, page, page_size))


async def jobs_page(request: Request) -> Response:
    """The key, the query and the page in one worker thread: a list is polled, and each
    dependency FastAPI solves, or thread it hops to, costs about what the page does."""
    return await run_in_threadpool(_jobs_page, request)
