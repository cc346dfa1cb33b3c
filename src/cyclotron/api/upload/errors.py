"""This face's one error shape, ``{id, status, message}``, and how the error tree maps to it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
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


class UploadFaceError(Exception):
    """An answer of this face that names a job (its id and status)."""

    def __init__(self, status_code: int, job_id: int, status: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.job_id, self.status, self.message = (
            status_code,
            job_id,
            status,
            message,
        )


def error_response(
    status_code: int, message: str, job_id: int = 0, status: str = "Unknown"
) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse(
        {"id": job_id, "status": status, "message": message},
        status_code=status_code,
        headers=headers,
    )


_CODES: list[tuple[type[CyclotronError], int]] = [
    (PayloadTooLarge, 413),
    (InputError, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (TransitionRefused, 409),
    (ConflictError, 400),
    (ServiceUnavailable, 503),
]


def map_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, UploadFaceError):
        return error_response(exc.status_code, exc.message, exc.job_id, exc.status)
    if isinstance(exc, RequestValidationError):
        return error_response(400, "Malformed request")
    if isinstance(exc, CyclotronError):
        for kind, code in _CODES:
            if isinstance(exc, kind):
                return error_response(code, exc.message)
    return error_response(500, "Internal server error")


class UploadFaceRoute(APIRoute):
    """Routes of this face answer every error in the face's own shape (never FastAPI's)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (CyclotronError, UploadFaceError, RequestValidationError) as exc:
                return map_error(exc)
            except Exception as exc:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return map_error(exc)

        return answer
