"""This face's one error shape, ``{id, status, message}``."""

from __future__ import annotations

from typing import ClassVar

from fastapi import Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cyclotron.api.errors import FaceRoute, status_code_for
from cyclotron.errors import CyclotronError, InputError

INVALID_SERVICE = "Invalid service"


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


class UploadFaceRoute(FaceRoute):
    """Malformed input is 400 here, never FastAPI's 422, and every error has the face's shape."""

    handled: ClassVar[tuple[type[Exception], ...]] = (
        CyclotronError,
        UploadFaceError,
        RequestValidationError,
    )

    @classmethod
    def answer_error(cls, exc: Exception) -> Response:
        if isinstance(exc, UploadFaceError):
            return error_response(exc.status_code, exc.message, exc.job_id, exc.status)
        if isinstance(exc, RequestValidationError):
            return error_response(400, "Malformed request")
        code = status_code_for(exc, input_error=400)
        message = exc.message if isinstance(exc, CyclotronError) else "Internal server error"
        if isinstance(exc, InputError) and exc.problems[0].location == ("service",):
            message = INVALID_SERVICE  # the words of this face's contract
        return error_response(code, message)
