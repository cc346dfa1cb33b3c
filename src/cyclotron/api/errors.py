"""What the faces share about errors: the HTTP code of each error kind, and a route class
that turns every error of a route into its face's one error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from cyclotron.domain.messages import without_paths
from cyclotron.domain.text import encodable, text_problem
from cyclotron.errors import (
    ConflictError,
    CyclotronError,
    FilesRemoved,
    Forbidden,
    IdempotencyKeyReused,
    InputError,
    NotFound,
    PayloadTooLarge,
    PluginError,
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
    (IdempotencyKeyReused, 409),
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


class InvalidParameter(InputError):
    """A query parameter refused; its problems' locations start with ``"query"``
    (``("query", "search")``), not with the body."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(problem, ("query", name))
        self.message = f"query parameter {name!r} {problem}"


# Identifiers in the query (YAPTIDE's ``job_id``) are their routes' own, like path parameters:
# an id that cannot exist is an unknown job (404), and it is checked before any query runs.
QUERY_IDENTIFIERS = frozenset({"job_id"})


def refuse_unsearchable_query(request: Request) -> None:
    """InvalidParameter for a query parameter no database may search with (``domain.text``:
    control characters, lone surrogates), whatever route it is for. Path parameters and ids
    are the routes' own: each checks its ids and paths as its face's specification says."""
    for name, value in request.query_params.multi_items():
        if name in QUERY_IDENTIFIERS and text_problem(name) is None:
            continue
        for text in (name, value):
            problem = text_problem(text)
            if problem is not None:
                raise InvalidParameter(name, problem)


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
                refuse_unsearchable_query(request)
                return await handler(request)
            except ClientDisconnect:
                # Nobody is left to answer: an expected event, not an error of the server.
                log.info("%s %s: the client went away", request.method, request.url.path)
                return Response(status_code=400)
            except face.handled as exc:
                if isinstance(exc, CyclotronError):  # it may quote what the request sent
                    exc.message = encodable(exc.message)
                if isinstance(exc, PluginError):  # a 500 says what failed, not where
                    log.warning("%s %s: %s", request.method, request.url.path, exc.message)
                    exc.message = without_paths(exc.message)
                return face.answer_error(exc)
            except (RequestValidationError, HTTPException):
                # FastAPI's own answers (422 schema errors, 404, 405, a body it cannot read),
                # raised as Starlette's class or FastAPI's subclass of it.
                raise
            except Exception as exc:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return face.answer_error(exc)

        return answer


class RequestRoute(APIRoute):
    """A route whose ``async`` endpoint takes the request alone, called as it is: FastAPI has
    no parameter or dependency to solve (the endpoint reads its query and headers itself).
    For the reads clients poll, where solving costs more than the read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Awaitable[Response]] = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request)

        return handler
