"""Dependencies shared by the faces."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from cyclotron.services.core import Core


async def get_core(request: Request) -> Core:
    # ``async``: FastAPI runs a plain function dependency in a worker thread, a hop that costs
    # more than the lookup itself.
    core: Core = request.app.state.core
    return core


CoreDep = Annotated[Core, Depends(get_core)]


def bearer_token(connection: HTTPConnection) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header, if any (HTTP or WebSocket)."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
