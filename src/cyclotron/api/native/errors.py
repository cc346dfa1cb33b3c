"""This face's error shape, ``{"detail": ...}``, and how the error tree maps to it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from cyclotron.errors import (
    ConflictError,
    CyclotronError,
    Forbidden,
    InputError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TransitionRefused,
    Unauthorized,
)

log = logging.getLogger(__name__)


class NativeFaceError(Exception):
    """An answer of this face with its own code and detail."""

    def __init__(
        self, status_code: int, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code, self.detail, self.headers = status_code, detail, headers


_CODES: list[tuple[type[CyclotronError], int]] = [
    (PayloadTooLarge, 413),
    (InputError, 422),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (TransitionRefused, 409),
    (ConflictError, 400),
    (ServiceUnavailable, 503),
]


def map_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, NativeFaceError):
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
    if isinstance(exc, CyclotronError):
        for kind, code in _CODES:
            if isinstance(exc, kind):
                headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
                return JSONResponse({"detail": exc.message}, code, headers=headers)
    return JSONResponse({"detail": "Internal server error"}, 500)


class NativeFaceRoute(APIRoute):
    """Routes of this face answer the error tree as ``{"detail": ...}``; 500s carry no trace."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (CyclotronError, NativeFaceError) as exc:
                return map_error(exc)
            except (RequestValidationError, HTTPException):
                raise  # FastAPI answers these itself (422 schema errors are this face's shape)
            except Exception as exc:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return map_error(exc)

        return answer
