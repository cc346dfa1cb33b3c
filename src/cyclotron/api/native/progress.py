"""Live progress of one job: WebSocket ``/api/jobs/{id}/progress`` and SSE ``.../events``.

Both subscribe first and read the job second, so no event can fall between the two; both
then deliver every stored event after the last one sent, in ``seq`` order, until the
terminal one.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from cyclotron.api.deps import CoreDep, bearer_token
from cyclotron.api.native.errors import NativeFaceRoute
from cyclotron.api.native.messages import TERMINAL_TYPES, message_for, snapshot, terminal_message
from cyclotron.api.native.routes import job_ref
from cyclotron.api.native.schemas import error_responses
from cyclotron.domain.records import Caller
from cyclotron.domain.states import JOB_TERMINAL
from cyclotron.errors import NotFound, Unauthorized
from cyclotron.services.apikeys import authenticate
from cyclotron.services.bus import Subscription
from cyclotron.services.core import Core
from cyclotron.services.progress import read_progress, visible_job_id
from cyclotron.settings import Settings

router = APIRouter(prefix="/api", route_class=NativeFaceRoute, tags=["native"])

CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN_ORIGIN, CLOSE_UNKNOWN_JOB = 4001, 4003, 4004
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SSE_RETRY_MS = 2000
Message = dict[str, Any]


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
) -> AsyncIterator[Message | None]:
    """The job's messages from ``after`` on (a snapshot first when None); None means ping."""
    job, events = await run_in_threadpool(read_progress, core, job_id, after or 0)
    last = after or 0
    if after is None:
        if job.state in JOB_TERMINAL:
            final = terminal_message(job, events)
            if final is not None:
                yield final
            return
        first = snapshot(job)
        last = job.last_event_seq
        yield first
        events = []
    quiet_since = time.monotonic()
    poll = core.settings.api.progress_poll_interval
    while True:
        for event in events:
            last = event.seq
            message = message_for(event, job)
            if message is None:
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
        job, events = await run_in_threadpool(read_progress, core, job_id, last)


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
    subscription = core.bus.subscribe(job_id)
    try:
        stream = progress_messages(
            core, job_id, subscription, None, core.settings.api.ws_ping_interval
        )
        async for message in stream:
            await websocket.send_json(message if message is not None else {"type": "ping"})
        await websocket.close(1000)
    except LookupError:
        await websocket.send_json({"type": "error", "error": "the job was deleted"})
        await websocket.close(CLOSE_UNKNOWN_JOB)
    except WebSocketDisconnect:
        pass
    finally:
        core.bus.unsubscribe(subscription)


def stream_caller(
    request: Request, core: CoreDep, token: Annotated[str | None, Query()] = None
) -> Caller:
    """Browsers' EventSource cannot set headers: ``?token=`` is accepted as well."""
    return authenticate(core, token or bearer_token(request))


def _sse(message: Message | None) -> bytes:
    if message is None:
        return b": ping\n\n"
    return (
        f"id: {message['seq']}\nevent: {message['type']}\ndata: {json.dumps(message)}\n\n".encode()
    )


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
    core: CoreDep,
    caller: Annotated[Caller, Depends(stream_caller)],
    last_event_header: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    job_id = await run_in_threadpool(visible_job_id, core, caller, job_ref(id))
    after = last_event_header if last_event_header is not None else last_event_id
    subscription = core.bus.subscribe(job_id)
    if after is not None:
        job, events = await run_in_threadpool(read_progress, core, job_id, 0)
        final = terminal_message(job, events) if job.state in JOB_TERMINAL else None
        if final is not None and after >= final["seq"]:
            core.bus.unsubscribe(subscription)
            return Response(status_code=204)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield f"retry: {SSE_RETRY_MS}\n\n".encode()
            stream = progress_messages(
                core, job_id, subscription, after, core.settings.api.sse_ping_interval
            )
            async for message in stream:
                yield _sse(message)
        except LookupError:
            return
        finally:
            core.bus.unsubscribe(subscription)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
