"""The app of a unit test's ``core``, asked over ASGI in this process (no server, no socket),
its cookies kept between requests like a browser's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from cyclotron.api.app import create_app
from cyclotron.services.core import Core


class AppClient:
    def __init__(self, core: Core) -> None:
        transport = httpx.ASGITransport(app=create_app(core, run_background=False))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        self.loop = asyncio.new_event_loop()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@contextmanager
def app_client(core: Core) -> Iterator[AppClient]:
    client = AppClient(core)
    try:
        yield client
    finally:
        client.close()
