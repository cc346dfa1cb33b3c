"""What the client raises: one tree, every error a ``CyclotronError``.

    CyclotronError
    ├── ConnectionFailed      the server could not be reached (after the retries allowed)
    ├── WaitTimeout           ``wait`` gave up before the job ended
    └── ApiError              the server answered with an error status (``status_code``, ``detail``)
        ├── BadRequest        400: the job's state does not allow it, a bad path
        ├── Unauthorized      401: a key is needed, or the key is unknown
        ├── Forbidden         403
        ├── NotFound          404: unknown, hidden or deleted job, file, page
        ├── Conflict          409: a cancel lost its race; an idempotency key reused
        ├── Gone              410: the job's files were removed by retention
        ├── InvalidRequest    422: ``problems`` lists each refusal with its location
        ├── QueueFull         429: ``retry_after`` seconds
        └── Unavailable       503: the service is configured but unavailable

httpx's own exceptions are translated where they enter (``raise_for_answer``,
``ConnectionFailed``), so callers catch these and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class CyclotronError(Exception):
    """Every error of the client."""


class ConnectionFailed(CyclotronError):
    """The server could not be reached, or the connection broke, after every retry."""


class WaitTimeout(CyclotronError):
    """The job did not end within the time ``wait`` was given."""


@dataclass(frozen=True)
class Problem:
    """One refusal of a 422: where in the request (``("body", "ntasks")``) and why."""

    location: tuple[str | int, ...]
    message: str


class ApiError(CyclotronError):
    """The server answered with an error status."""

    def __init__(self, status_code: int, detail: str, body: Any = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.body = body


class BadRequest(ApiError):
    """400: the job's state does not allow the action, or a bad file path."""


class Unauthorized(ApiError):
    """401: authentication is on and the key is missing or unknown."""


class Forbidden(ApiError):
    """403: the key lacks the right."""


class NotFound(ApiError):
    """404: an unknown or hidden job, or an unknown file, task, sample or estimator."""


class Conflict(ApiError):
    """409: a cancel lost the race with completion, or an idempotency key was reused."""


class Gone(ApiError):
    """410: the job's files have been removed by retention."""


class InvalidRequest(ApiError):
    """422: the request was refused; ``problems`` says where and why."""

    def __init__(self, status_code: int, detail: str, body: Any, problems: list[Problem]) -> None:
        super().__init__(status_code, detail, body)
        self.problems = problems


class QueueFull(ApiError):
    """429: the service's queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, status_code: int, detail: str, body: Any, retry_after: int) -> None:
        super().__init__(status_code, detail, body)
        self.retry_after = retry_after


class Unavailable(ApiError):
    """503: the service is configured but cannot run jobs now."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    503: Unavailable,
}


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _problems(detail: Any) -> list[Problem]:
    if not isinstance(detail, list):
        return []
    return [
        Problem(tuple(item.get("loc", ())), str(item.get("msg", "")))
        for item in detail
        if isinstance(item, dict)
    ]


def _text(detail: Any, problems: list[Problem]) -> str:
    if problems:
        return "; ".join(
            f"{'.'.join(str(p) for p in problem.location[1:]) or 'body'}: {problem.message}"
            for problem in problems
        )
    return str(detail)


def error_for(response: httpx.Response) -> ApiError:
    """The error an answer with status 400 or above stands for (its body already read)."""
    body = _body(response)
    # The native face answers {"detail": ...}; the file-upload face {"message": ...}.
    detail = body.get("detail", body.get("message", body)) if isinstance(body, dict) else body
    problems = _problems(detail)
    text = _text(detail, problems)
    status = response.status_code
    if status == 422:
        return InvalidRequest(status, text, body, problems)
    if status == 429:
        retry_after = response.headers.get("retry-after", "")
        seconds = int(retry_after) if retry_after.isdigit() else 30
        return QueueFull(status, text, body, max(seconds, 1))
    return _BY_STATUS.get(status, ApiError)(status, text, body)


def raise_for_answer(response: httpx.Response) -> None:
    """Raise the ``ApiError`` of an error answer; nothing for a success."""
    if response.status_code >= 400:
        raise error_for(response)
