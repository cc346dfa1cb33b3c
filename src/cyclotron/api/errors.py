"""What the faces share about errors: the HTTP code of each error kind, and a route class
that turns every error of a route into its face's one error shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from cyclotron.errors import (
    ConflictError,
    CyclotronError,
    FilesRemoved,
    Forbidden,
    InputError,
    NotFound,
    PayloadTooLarge,
    QueueFull,
    RateLimited,
    ServiceUnavailable,
    Superseded,
    TransitionRefused,
    Unauthorized,
)

log = logging.getLogger(__name__)

# Most specific first: a subclass is listed before its base.
_CODES: tuple[tuple[type[CyclotronError], int], ...] = (
    (PayloadTooLarge, 413),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (FilesRemoved, 410),
    (Superseded, 410),
    (TransitionRefused, 409),
    (ConflictError, 400),
    (ServiceUnavailable, 503),
    (QueueFull, 429),
    (RateLimited, 429),
)


def status_code_for(exc: Exception, input_error: int) -> int:
    """The HTTP code of an error; ``input_error`` is the face's code for bad input."""
    if isinstance(exc, CyclotronError):
        for kind, code in _CODES:
            if isinstance(exc, kind):
                return code
        if isinstance(exc, InputError):
            return input_error
    return 500


class FaceRoute(APIRoute):
    """A route whose errors are answered by its face's ``answer_error``; 500s carry no trace."""

    handled: ClassVar[tuple[type[Exception], ...]] = (CyclotronError,)

    @classmethod
    def answer_error(cls, exc: Exception) -> Response:
        """The face's error answer; faces override it with their own shape."""
        code = status_code_for(exc, input_error=400)
        detail = exc.message if isinstance(exc, CyclotronError) else "Internal server error"
        return JSONResponse({"detail": detail}, code)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        face = type(self)

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except face.handled as exc:
                return face.answer_error(exc)
            except (RequestValidationError, HTTPException):
                # FastAPI's own answers (422 schema errors, 404, 405, a body it cannot read),
                # raised as Starlette's class or FastAPI's subclass of it.
                raise
            except Exception as exc:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return face.answer_error(exc)

        return answer
