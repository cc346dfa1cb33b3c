"""This face's error shape, ``{"detail": ...}``."""

from __future__ import annotations

from typing import Any, ClassVar

from fastapi import Response
from fastapi.responses import JSONResponse

from cyclotron.api.errors import FaceRoute, status_code_for
from cyclotron.errors import CyclotronError, QueueFull


class NativeFaceError(Exception):
    """An answer of this face with its own code and detail."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(detail)
        self.status_code, self.detail = status_code, detail


class NativeFaceRoute(FaceRoute):
    """Bad input is 422 here, as FastAPI's own schema errors are."""

    handled: ClassVar[tuple[type[Exception], ...]] = (CyclotronError, NativeFaceError)

    @classmethod
    def answer_error(cls, exc: Exception) -> Response:
        if isinstance(exc, NativeFaceError):
            return JSONResponse({"detail": exc.detail}, exc.status_code)
        code = status_code_for(exc, input_error=422)
        detail = exc.message if isinstance(exc, CyclotronError) else "Internal server error"
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else {}
        if isinstance(exc, QueueFull):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": detail}, code, headers=headers)
