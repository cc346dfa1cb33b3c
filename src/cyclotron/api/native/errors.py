"""This face's error shape, ``{"detail": ...}``."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cyclotron.api.errors import FaceRoute, status_code_for
from cyclotron.errors import CyclotronError, QueueFull


class NativeFaceError(Exception):
    """An answer of this face with its own code and detail."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


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
        detail = exc.message if isinstance(exc, CyclotronError) else "Internal server error"
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
