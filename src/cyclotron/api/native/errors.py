"""This face's error shapes: ``{"detail": "<message>"}``, and for every 422 FastAPI's list form
``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` (spec/native.md §2)."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cyclotron.api.errors import FaceRoute, InvalidParameter, RequestRoute, status_code_for
from cyclotron.errors import CyclotronError, InputError, QueueFull


def value_problem(loc: tuple[str | int, ...], message: str) -> dict[str, Any]:
    """One entry of a 422 list: a value of the request at ``loc`` ("body", "query", ...)."""
    return {"loc": list(loc), "msg": message, "type": "value_error"}


class NativeFaceError(Exception):
    """An answer of this face with its own code and detail."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail

    @classmethod
    def invalid(cls, loc: tuple[str | int, ...], message: str) -> NativeFaceError:
        """A 422 for one value of the request, in FastAPI's list form."""
        return cls(422, [value_problem(loc, message)])


class NativeFaceRoute(FaceRoute):
    """Bad input is 422 here, as FastAPI's own schema errors are."""

    handled: ClassVar[tuple[type[Exception], ...]] = (
        CyclotronError,
        NativeFaceError,
        StarletteHTTPException,
    )

    @classmethod
    def answer_error(cls, exc: Exception) -> Response:
        if isinstance(exc, NativeFaceError):
            return JSONResponse({"detail": exc.detail}, exc.status_code)
        if isinstance(exc, StarletteHTTPException):
            return cls._framework_error(exc)
        code = status_code_for(exc, input_error=422)
        detail: Any = exc.message if isinstance(exc, CyclotronError) else "Internal server error"
        if code == 422 and isinstance(exc, InputError):
            part = () if isinstance(exc, InvalidParameter) else ("body",)
            detail = [value_problem((*part, *p.location), p.message) for p in exc.problems]
        elif code == 422:
            detail = [value_problem(("body",), detail)]
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else {}
        if isinstance(exc, QueueFull):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": detail}, code, headers=headers)

    @staticmethod
    def _framework_error(exc: StarletteHTTPException) -> Response:
        """FastAPI's own HTTP errors raised while reading the request, in this face's shape.
        A JSON body that is not UTF-8 is a 422 in FastAPI's list form, as any other body that
        is not JSON (spec §4.3)."""
        if isinstance(exc.__cause__, UnicodeDecodeError):
            problem = {
                "type": "json_invalid",
                "loc": ["body", 0],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": str(exc.__cause__)},
            }
            return JSONResponse({"detail": [problem]}, 422)
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


class NativeReadRoute(NativeFaceRoute, RequestRoute):
    """A read clients poll (the job list): an ``async`` endpoint of the request alone, its
    errors answered as this face's."""
