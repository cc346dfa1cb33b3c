"""The YAPTIDE face's one error shape: ``{message, status_code[, job_state]}``."""

from __future__ import annotations

from typing import ClassVar

from fastapi import Response
from fastapi.responses import JSONResponse

from cyclotron.api.errors import FaceRoute, RequestRoute, status_code_for
from cyclotron.errors import ConflictError, CyclotronError, QueueFull, RateLimited

NO_STORE = {"Cache-Control": "no-store"}


class JobStateConflict(ConflictError):
    """A job's state forbids the action; the answer names the state."""

    def __init__(self, message: str, job_state: str) -> None:
        super().__init__(message)
        self.job_state = job_state


def error_body(message: str, status_code: int, **extra: object) -> dict[str, object]:
    return {"message": message, "status_code": status_code, **extra}


def error_response(message: str, status_code: int, **extra: object) -> JSONResponse:
    return JSONResponse(error_body(message, status_code, **extra), status_code, headers=NO_STORE)


class YaptideRoute(FaceRoute):
    handled: ClassVar[tuple[type[Exception], ...]] = (CyclotronError,)

    @classmethod
    def answer_error(cls, exc: Exception) -> Response:
        # This face answers every state conflict with 409 (yaptide.md §1.3).
        conflict = isinstance(exc, ConflictError)
        code = 409 if conflict else status_code_for(exc, input_error=400)
        message = exc.message if isinstance(exc, CyclotronError) else "Internal server error"
        extra: dict[str, object] = {}
        if isinstance(exc, JobStateConflict):
            extra["job_state"] = exc.job_state
        response = error_response(message, code, **extra)
        if isinstance(exc, QueueFull | RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response


class YaptideReadRoute(YaptideRoute, RequestRoute):
    """A poll of the YAPTIDE web UI (a status, the list): an ``async`` endpoint of the
    request alone, its errors answered as the face's."""
