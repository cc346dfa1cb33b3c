"""The reads the YAPTIDE web UI polls: a simulation's status and the user's list.

Each reads the login and what it shows in one transaction, with no dependency for FastAPI
to solve, in one worker thread (the event loop carries every progress stream, and a read
may wait for a connection of the pool). A status of many tasks is
kept, encoded, under its tasks' mark and the job's own fields: a later poll under the same
ones reads the job row and the mark, not the tasks. A list keeps each simulation's entry,
encoded, under a mark of its row and its tasks' sums: a later poll makes only the entries
whose marks moved.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from cyclotron.api.marked import MarkedMemo, app_memo
from cyclotron.api.yaptide import http, shapes
from cyclotron.api.yaptide.auth import ACCESS, NO_TOKEN, Sessions
from cyclotron.api.yaptide.errors import YaptideReadRoute
from cyclotron.api.yaptide.shapes import job_status
from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobState, TaskState
from cyclotron.errors import InputError, Unauthorized
from cyclotron.services.access.accounts import Accounts
from cyclotron.services.core import Core
from cyclotron.services.yaptide.simulations import (
    Login,
    check_login,
    login_simulation_page,
    login_status,
)

T = TypeVar("T")
MAX_PAGE_SIZE = 100
KEPT_ITEMS = 2_000  # an entry is about 0.5 kB
ORDER_BY = {"start_time": False, "end_time": True}
ORDER_TYPE = {"descend": True, "ascend": False}


Endpoint = Callable[[Request], Awaitable[Response]]


def _query(name: str, kind: str, description: str, required: bool = False) -> dict[str, Any]:
    schema = {"type": kind}
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


# What the endpoints read of the query themselves, for the OpenAPI document.
STATUS_QUERY = [_query("job_id", "string", "The simulation's id", required=True)]
LIST_QUERY = [
    _query("page_size", "integer", f"Simulations per page (default 6, at most {MAX_PAGE_SIZE})"),
    _query("page_idx", "integer", "The page, from 1"),
    _query("order_by", "string", "start_time (the default) or end_time"),
    _query("order_type", "string", "descend (the default) or ascend"),
    _query("job_state", "string", "Only simulations in these states (comma-separated)"),
]


def polled(
    router: APIRouter, path: str, summary: str, query: list[dict[str, Any]]
) -> Callable[[Endpoint], Endpoint]:
    """Add a ``GET`` route of an endpoint of the request alone (``YaptideReadRoute``: no
    dependency solved), its query parameters documented."""

    def add(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(
            path,
            endpoint,
            methods=["GET"],
            summary=summary,
            openapi_extra={"parameters": query},
            route_class_override=YaptideReadRoute,
        )
        return endpoint

    return add


class _Encoded:
    """A status body, and its gzip once a client asked for it."""

    __slots__ = ("data", "zipped")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.zipped: bytes | None = None


def status_memo(app: FastAPI) -> MarkedMemo[_Encoded]:
    """The encoded statuses of the many-task jobs last polled, each under its key: the
    job's tasks' mark with every job field the body shows."""
    return app_memo(app, "yaptide_statuses", MarkedMemo[_Encoded])


def _login(request: Request) -> Login:
    """The access cookie's login, its token verified here (401 "No token provided" without
    one); whether it still stands is read with what the request asks for."""
    token = request.cookies.get(ACCESS)
    if not token:
        raise Unauthorized(NO_TOKEN)
    state = request.app.state
    accounts: Accounts = state.accounts
    sessions: Sessions = state.sessions
    return Login(accounts, sessions.verified(accounts, token))


async def _read(request: Request, read: Callable[[Request, Login], T], login: Login) -> T:
    """``read(request, login)`` in a worker thread: the event loop also carries every
    progress stream, and a read may wait for a connection of the pool."""
    return await run_in_threadpool(read, request, login)


def _status_key(job: JobRecord, mark: Hashable) -> Hashable:
    # Every job field the body shows, beside the tasks' mark.
    return (mark, job.state, job.error, job.created_at)


def _status_body(request: Request, login: Login) -> _Encoded:
    core: Core = request.app.state.core
    memo = status_memo(request.app)
    kept: list[_Encoded] = []

    def held(job: JobRecord, mark: Hashable) -> bool:
        found = memo.get(job.id, _status_key(job, mark))
        if found is not None:
            kept.append(found)
        return found is not None

    simulation_id = request.query_params.get("job_id", "").strip()
    read = login_status(core, login, simulation_id, held)
    if read.tasks is None:
        return kept[0]
    encoded = _Encoded(http.fast_json(job_status(read.job, read.tasks)))
    if read.mark is not None:
        memo.put(read.job.id, _status_key(read.job, read.mark), encoded)
    return encoded


async def status(request: Request) -> Response:
    """``GET /jobs/direct`` and ``GET /jobs``: a simulation's state and its tasks."""
    login = _login(request)
    encoded = await _read(request, _status_body, login)
    if (
        len(encoded.data) > http.GZIP_ABOVE
        and "gzip" in request.headers.get("accept-encoding", "").lower()
    ):
        if encoded.zipped is None:
            level = 1 if len(encoded.data) > http.GZIP_FAST_ABOVE else 5
            encoded.zipped = gzip.compress(encoded.data, compresslevel=level, mtime=0)
        return Response(encoded.zipped, 200, headers=_ZIPPED, media_type=http.JSON_TYPE)
    return Response(encoded.data, 200, headers=_PLAIN, media_type=http.JSON_TYPE)


_PLAIN = {"Cache-Control": http.NO_STORE}
_ZIPPED = {**_PLAIN, "Content-Encoding": "gzip", "Vary": "Origin, Accept-Encoding"}


def _states(raw: str | None) -> frozenset[JobState] | None:
    if raw is None:
        return None
    names = [n.strip().upper() for n in raw.split(",") if n.strip()]
    if not names:
        return None
    valid = {s.value for s in JobState}
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InputError(
            f"Unknown job_state {', '.join(unknown)}; valid: {', '.join(s.value for s in JobState)}"
        )
    return frozenset(JobState(n) for n in names)


def _page_query(request: Request) -> tuple[frozenset[JobState] | None, bool, bool, int, int]:
    """(states, by end time, descending, page size, page index) of the query: 400s."""
    page_size = http.query_int(request, "page_size", 6)
    page_idx = http.query_int(request, "page_idx", 1)
    if page_size < 1:
        raise InputError("page_size must be an integer >= 1")
    if page_idx < 1:
        raise InputError("page_idx must be an integer >= 1")
    order_by = request.query_params.get("order_by") or "start_time"
    order_type = request.query_params.get("order_type") or "descend"
    if order_by not in ORDER_BY:
        raise InputError("order_by must be 'start_time' or 'end_time'")
    if order_type not in ORDER_TYPE:
        raise InputError("order_type must be 'descend' or 'ascend'")
    states = _states(request.query_params.get("job_state"))
    return (
        states,
        ORDER_BY[order_by],
        ORDER_TYPE[order_type],
        min(page_size, MAX_PAGE_SIZE),
        page_idx,
    )


def _progress(job_state: str, sums: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    return shapes.progress_body(
        job_state,
        {state: sums.get(state.value, (0, 0, 0))[0] for state in TaskState},
        sum(s[1] for s in sums.values()),
        sum(s[2] for s in sums.values()),
    )


def _list_item(row: Any, sums: dict[str, tuple[int, int, int]], server: str) -> dict[str, Any]:
    """``shapes.list_item`` of a plain job row and its tasks' sums by state."""
    attrs = row.attrs or {}
    input_type = str(attrs.get("input_type", "files"))
    platform = str(attrs.get("platform", "DIRECT"))
    item: dict[str, Any] = {
        "job_id": row.yaptide_id,
        "title": attrs.get("title", row.name),
        "start_time": http.http_date(row.created_at),
        "end_time": http.http_date(row.ended_at),
        "sim_type": row.service,
        "input_type": input_type.lower(),
        "platform": platform.lower(),
        "ntasks": row.ntasks,
        "metadata": {
            "platform": platform.upper(),
            "server": server,
            "input_type": input_type.upper(),
            "sim_type": row.service,
        },
        "progress": _progress(row.state, sums),
    }
    if attrs.get("stands_in_for") and attrs.get("engine"):
        item["metadata"]["engine"] = str(attrs["engine"])  # as shapes.list_item
    if row.state in JOB_TERMINAL:
        item["job_state"] = row.state
    return item


def _list_body(request: Request, login: Login) -> bytes:
    core: Core = request.app.state.core
    try:
        states, by_end, descending, page_size, page_idx = _page_query(request)
    except InputError:
        check_login(core, login)  # the login is answered for first, whatever the query says
        raise
    page = login_simulation_page(
        core, login, states, by_end, descending, (page_idx - 1) * page_size, page_size
    )
    server = core.settings.yaptide.server_name
    memo = app_memo(request.app, "yaptide_list_items", _items_memo)
    items = []
    rows = page.rows
    for raw, job_id in zip(rows.raw, rows.ids(), strict=True):
        mark = page.marks[job_id]
        item = memo.get(job_id, mark)
        if item is None:
            made = _list_item(rows.make(raw), page.progress[job_id], server)
            item = orjson.Fragment(http.fast_json(made))
            memo.put(job_id, mark, item)
        items.append(item)
    body = {
        "message": "User simulations",
        "simulations": items,
        "page_count": math.ceil(page.total / page_size),
        "simulations_count": page.total,
    }
    return http.fast_json(body)


def _items_memo() -> MarkedMemo[orjson.Fragment]:
    """Each simulation's entry of a list, encoded, under a mark of its row and its tasks'
    sums: the web UI polls the list, and its entries rarely change between polls."""
    return MarkedMemo[orjson.Fragment](KEPT_ITEMS)


async def simulations(request: Request) -> Response:
    """``GET /user/simulations``: a page of the user's simulations."""
    login = _login(request)
    return http.answer(request, await _read(request, _list_body, login))
