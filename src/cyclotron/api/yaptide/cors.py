"""CORS for two faces: the native ``/api`` keeps its own rules; every other path follows the
YAPTIDE face's (yaptide.md §1.9): configured exact origins only, credentials allowed, the
headers on every answer (errors and 304 included), preflights answered without
authentication, and cookie-bearing writes from foreign origins refused.

It also serves a path with a trailing slash exactly like the path without one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http.cookies import SimpleCookie

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NATIVE_PREFIX = "/api/"
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOWED_HEADERS = ("content-type", "authorization", "idempotency-key")
AUTH_COOKIES = ("access_token", "refresh_token")
WRITES = {"POST", "PUT", "DELETE"}
# The face's own paths, served alike with and without a trailing slash.
FACE_ROOTS = frozenset(
    {"auth", "jobs", "results", "estimators", "inputs", "logfiles", "user", "clusters", "tasks"}
)


def _is_native(path: str) -> bool:
    return path == "/api" or path.startswith(NATIVE_PREFIX)


async def _json(
    send: Send, status: int, body: dict[str, object], headers: Iterable[tuple[str, str]]
) -> None:
    data = json.dumps(body).encode("utf-8")
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    raw += [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(data)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class FaceCors:
    def __init__(self, app: ASGIApp, native: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.native = native  # ``app`` wrapped in the native face's CORS middleware
        self.origins = frozenset(o.rstrip("/") for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_native(scope["path"]):
            await self.native(scope, receive, send)
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/") and path.split("/")[1] in FACE_ROOTS:
            scope = dict(scope, path=path.rstrip("/") or "/")
            scope["raw_path"] = scope["path"].encode()
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in self.origins
        method = scope["method"]
        cors = (
            [
                ("Access-Control-Allow-Origin", origin or ""),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ]
            if allowed
            else []
        )
        if (
            method == "OPTIONS"
            and "access-control-request-method" in headers
            and origin is not None
        ):
            if not allowed:
                await _json(send, 400, {"message": "Origin not allowed", "status_code": 400}, [])
                return
            requested = [
                h.strip().lower()
                for h in headers.get("access-control-request-headers", "").split(",")
                if h.strip()
            ]
            allow_headers = (
                ", ".join(h for h in requested if h in ALLOWED_HEADERS)
                or "Content-Type, Authorization"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (k.lower().encode(), v.encode())
                        for k, v in [
                            *cors,
                            ("Access-Control-Allow-Methods", ALLOW_METHODS),
                            ("Access-Control-Allow-Headers", allow_headers),
                            ("Access-Control-Max-Age", "600"),
                        ]
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if (
            method in WRITES
            and origin is not None
            and not allowed
            and not self._same_origin(scope, headers, origin)
            and self._has_auth_cookie(headers)
        ):
            await _json(send, 403, {"message": "Origin not allowed", "status_code": 403}, [])
            return
        if not allowed:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = origin or ""
                out["Access-Control-Allow-Credentials"] = "true"
                vary = out.get("vary")
                if vary is None:
                    out["Vary"] = "Origin"
                elif "origin" not in vary.lower():
                    out["Vary"] = f"{vary}, Origin"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _same_origin(scope: Scope, headers: Headers, origin: str) -> bool:
        host = headers.get("host")
        return host is not None and origin == f"{scope.get('scheme', 'http')}://{host}"

    @staticmethod
    def _has_auth_cookie(headers: Headers) -> bool:
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:
            return False
        return any(name in cookie for name in AUTH_COOKIES)
