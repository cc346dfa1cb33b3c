"""Live progress of one job: WebSocket ``/api/jobs/{id}/progress`` and SSE ``.../events``.

Both subscribe first and read the job second, so no event can fall between the two; both
then deliver every stored event after the last one sent, in ``seq`` order, until the
terminal one. Live streams take their messages from the job's shared feed (``feeds``); a
stream resumed with ``Last-Event-ID``, or one the feed cannot serve, reads the log itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep, bearer_token
from cyclotron.api.native.errors import NativeFaceRoute
from cyclotron.api.native.feeds import Delivery, hub_of, watch
from cyclotron.api.native.messages import (
    TERMINAL_TYPES,
    ProgressView,
    snapshot,
    terminal_message,
)
from cyclotron.api.native.routes import job_ref
from cyclotron.api.native.schemas import error_responses
from cyclotron.domain.records import Caller
from cyclotron.domain.states import JOB_TERMINAL
from cyclotron.errors import NotFound, Unauthorized
from cyclotron.services.access.apikeys import authenticate
from cyclotron.services.bus import Subscription
from cyclotron.services.core import Core
from cyclotron.services.jobs.progress import read_events, read_progress, visible_job_id
from cyclotron.settings import Settings

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN_ORIGIN, CLOSE_UNKNOWN_JOB = 4001, 4003, 4004
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SSE_RETRY_MS = 2000
Message = dict[str, Any]
PING = json.dumps({"type": "ping"})


def origin_allowed(origin: str | None, host: str | None, settings: Settings) -> bool:
    """No Origin, the server's own host and port, a loopback host, or a configured origin."""
    if not origin:
        return True
    if origin in settings.api.cors_origins:
        return True
    parts = urlsplit(origin)
    if (parts.hostname or "") in LOOPBACK_HOSTS:
        return True
    return bool(host) and parts.netloc == host


async def progress_messages(
    core: Core, job_id: str, subscription: Subscription, after: int | None, ping_every: float
) -> AsyncGenerator[Message | None, None]:
    """The job's messages after ``after`` (a snapshot first when None); None means ping.

    A resumed stream folds the stored events up to ``after`` without sending them, so that
    what it sends is built as it was built live (ProgressView).
    """
    # A resumed stream folds the log from its start; a new one starts from the job as it is.
    job, events = await run_in_threadpool(
        lambda: read_progress(core, job_id, 0, log_if_active=after is not None)
    )
    if after is None:
        if job.state in JOB_TERMINAL:
            final = terminal_message(job, events)
            if final is not None:
                yield final
            return
        view, sent = ProgressView(job), job.last_event_seq
        yield snapshot(job)
        events = []
    else:
        view, sent = ProgressView.before_any_event(job), after
    last = view.job.last_event_seq
    quiet_since = time.monotonic()
    poll = core.settings.api.progress_poll_interval
    while True:
        for event in events:
            last = event.seq
            message = view.message(event)
            if message is None or event.seq <= sent:
                continue
            quiet_since = time.monotonic()
            yield message
            if message["type"] in TERMINAL_TYPES:
                return
        if time.monotonic() - quiet_since >= ping_every:
            quiet_since = time.monotonic()
            yield None
        wait = min(poll, max(0.0, ping_every - (time.monotonic() - quiet_since)))
        await subscription.wait(wait)
        events = await run_in_threadpool(read_events, core, job_id, last)


async def stored_messages(
    core: Core, job_id: str, after: int | None, ping_every: float
) -> AsyncGenerator[Delivery | None, None]:
    """``progress_messages`` read by this stream alone, subscribed before its first read."""
    subscription = core.bus.subscribe(job_id)
    try:
        async with aclosing(progress_messages(core, job_id, subscription, after, ping_every)) as s:
            async for message in s:
                yield Delivery.of(message) if message is not None else None
    finally:
        core.bus.unsubscribe(subscription)


def live_messages(
    state: Any, core: Core, job_id: str, ping_every: float
) -> AsyncGenerator[Delivery | None, None]:
    """A snapshot then live messages, from the job's shared feed (the log when it cannot)."""

    def replay(after: int | None) -> AsyncGenerator[Delivery | None, None]:
        return stored_messages(core, job_id, after, ping_every)

    return watch(hub_of(state, core), job_id, ping_every, replay)


@router.websocket("/jobs/{id}/progress")
async def progress_socket(websocket: WebSocket, id: str) -> None:
    core: Core = websocket.app.state.core
    await websocket.accept()
    token = websocket.query_params.get("token") or bearer_token(websocket)
    try:
        caller = await run_in_threadpool(authenticate, core, token)
    except Unauthorized:
        await websocket.close(CLOSE_UNAUTHORIZED)
        return
    if not origin_allowed(
        websocket.headers.get("origin"), websocket.headers.get("host"), core.settings
    ):
        await websocket.close(CLOSE_FORBIDDEN_ORIGIN)
        return
    try:
        job_id = await run_in_threadpool(visible_job_id, core, caller, job_ref(id))
    except NotFound:
        await websocket.send_json({"type": "error", "error": f"Job {id} not found"})
        await websocket.close(CLOSE_UNKNOWN_JOB)
        return
    ping_every = core.settings.api.ws_ping_interval
    try:
        async with aclosing(live_messages(websocket.app.state, core, job_id, ping_every)) as s:
            async for delivery in s:
                await websocket.send_text(delivery.text if delivery is not None else PING)
        await websocket.close(1000)
    except LookupError:
        await websocket.send_json({"type": "error", "error": "the job was deleted"})
        await websocket.close(CLOSE_UNKNOWN_JOB)
    except WebSocketDisconnect:
        pass


def stream_caller(
    request: Request, core: CoreDep, token: Annotated[str | None, Query()] = None
) -> Caller:
    """Browsers' EventSource cannot set headers: ``?token=`` is accepted as well."""
    return authenticate(core, token or bearer_token(request))


def _sse(delivery: Delivery | None) -> bytes:
    if delivery is None:
        return b": ping\n\n"
    kind = delivery.message["type"]
    return f"id: {delivery.seq}\nevent: {kind}\ndata: {delivery.text}\n\n".encode()


@router.get(
    "/jobs/{id}/events",
    summary="Progress as Server-Sent Events (resumable with Last-Event-ID)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "The event stream",
        },
        204: {"description": "Last-Event-ID is at or past the terminal event"},
        **error_responses(404, 422),
    },
)
async def progress_events(
    id: str,
    request: Request,
    core: CoreDep,
    caller: Annotated[Caller, Depends(stream_caller)],
    last_event_header: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    job_id = await run_in_threadpool(visible_job_id, core, caller, job_ref(id))
    after = last_event_header if last_event_header is not None else last_event_id
    ping_every = core.settings.api.sse_ping_interval
    if after is not None:
        job, events = await run_in_threadpool(
            lambda: read_progress(core, job_id, 0, log_if_active=False)
        )
        final = terminal_message(job, events) if job.state in JOB_TERMINAL else None
        if final is not None and after >= final["seq"]:
            return Response(status_code=204)
        stream = stored_messages(core, job_id, after, ping_every)
    else:
        stream = live_messages(request.app.state, core, job_id, ping_every)

    async def body() -> AsyncIterator[bytes]:
        async with aclosing(stream) as messages:
            try:
                yield f"retry: {SSE_RETRY_MS}\n\n".encode()
                async for delivery in messages:
                    yield _sse(delivery)
            except LookupError:
                return

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
