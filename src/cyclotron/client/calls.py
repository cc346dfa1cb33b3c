"""The native API's requests and answers without I/O, shared by ``Client`` and ``AsyncClient``.

Each ``Call`` names one request (method, path, query, body, headers), whether it may be sent
again after the connection failed, and how its answer is read; the two clients only send
it. A submission carries an ``Idempotency-Key`` made once per submission and sent again
with each retry, so a retry after a lost answer gets the first answer back instead of a
second job.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from cyclotron.client.models import (
    JobDetail,
    JobPage,
    Json,
    Submitted,
    UploadStatus,
    Validation,
)

T = TypeVar("T")
FileContent = str | bytes | PathLike[str]
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Waits between tries of a request whose connection failed: 0.5 s, doubling to 30 s.
FIRST_DELAY, LONGEST_DELAY = 0.5, 30.0


class Backoff:
    """The waits between tries of a request whose connection failed, for ``retry_for``
    seconds from the first failure on."""

    def __init__(self, retry_for: float) -> None:
        self.retry_for = retry_for
        self.deadline: float | None = None
        self.delay = FIRST_DELAY

    def next_delay(self) -> float | None:
        """Seconds to wait before the next try; None when it would end past the time given."""
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.retry_for
        if now + self.delay > self.deadline:
            return None
        delay, self.delay = self.delay, min(self.delay * 2, LONGEST_DELAY)
        return delay


def _json(response: httpx.Response) -> Any:
    return response.json()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    upload: Mapping[str, str] | None = None  # multipart form fields
    upload_files: Sequence[Path] = ()  # multipart files, opened for each try
    # Whether sending it again after a failed connection is safe: reads, and submissions
    # with their idempotency key.
    retry: bool = True


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def job_path(job: str, *rest: str) -> str:
    return "/".join((f"/api/jobs/{quote(str(job), safe='')}", *rest)).rstrip("/")


# --- Submitting ---


def submission(body: Json, key: str | None = None) -> Call[Submitted]:
    """``POST /api/jobs`` with ``body`` and one idempotency key for all its tries."""
    headers = {IDEMPOTENCY_HEADER: key or new_idempotency_key()}
    return Call(
        "POST", "/api/jobs", lambda r: Submitted.from_json(r.json()), json=body, headers=headers
    )


def native_body(
    service: str,
    given: Json,
    *,
    name: str | None = None,
    ntasks: int | None = None,
    seeds: Sequence[int] | None = None,
    priority: int | None = None,
    options: Mapping[str, Any] | None = None,
    reuse: bool | None = None,
) -> Json:
    """A JobSubmission (spec/native.md §4.1); what is left None takes the server's default."""
    body: Json = {"service": service, "input": given}
    extra = {
        "name": name,
        "ntasks": ntasks,
        "seeds": list(seeds) if seeds is not None else None,
        "priority": priority,
        "options": dict(options) if options is not None else None,
        "reuse": reuse,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def file_value(content: FileContent) -> str | dict[str, str]:
    """A file of a ``files`` input: UTF-8 text as it is, anything else as base64."""
    data = Path(content).read_bytes() if isinstance(content, PathLike) else content
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def files_input(
    files: Mapping[str, FileContent] | Iterable[PathLike[str]], primaries: int | None = None
) -> Json:
    """A ``files`` input: a mapping of names to contents (text, bytes or a path), or paths
    whose own names are used (``run.sh`` and its inputs)."""
    named = (
        dict(files.items())
        if isinstance(files, Mapping)
        else {Path(path).name: path for path in files}
    )
    given: Json = {"kind": "files", "files": {n: file_value(c) for n, c in named.items()}}
    if primaries is not None:
        given["primaries"] = primaries
    return given


def editor_project(project: Json | str | PathLike[str]) -> Json:
    """A YAPTIDE editor project: the project itself, a file holding it, or a YAPTIDE
    document that wraps it (``{"input": {"inputJson": …}}``, as the examples are kept)."""
    if isinstance(project, (str, PathLike)):
        project = json.loads(Path(project).read_text(encoding="utf-8"))
    assert isinstance(project, dict)
    wrapped = project.get("input")
    if isinstance(wrapped, dict) and isinstance(wrapped.get("inputJson"), dict):
        inner: Json = wrapped["inputJson"]
        return inner
    return project


def editor_input(project: Json | str | PathLike[str], primaries: int | None = None) -> Json:
    """An ``editor`` input; ``primaries`` overrides the project's number of particles."""
    given: Json = {"kind": "editor", "project": editor_project(project)}
    if primaries is not None:
        given["primaries"] = primaries
    return given


def alphafold_body(job: Json | str | PathLike[str]) -> Json:
    """An AlphaFold 3 input (either dialect), sent as it is (spec/native.md §4.2)."""
    if isinstance(job, (str, PathLike)):
        job = json.loads(Path(job).read_text(encoding="utf-8"))
    assert isinstance(job, dict)
    return job


def validation(body: Json) -> Call[Validation]:
    return Call("POST", "/api/validate", lambda r: Validation.from_json(r.json()), json=body)


# --- Reading jobs ---


def job_list(
    status: str | Sequence[str] | None = None,
    service: str | None = None,
    search: str | None = None,
    page: int = 1,
    page_size: int = 20,
    user_id: int | None = None,
) -> Call[JobPage]:
    params: dict[str, Any] = {"page": page, "page_size": page_size}
    if status:
        params["status"] = status if isinstance(status, str) else ",".join(status)
    if service:
        params["service"] = service
    if search:
        params["search"] = search
    if user_id is not None:
        params["user_id"] = user_id
    return Call("GET", "/api/jobs", lambda r: JobPage.from_json(r.json()), params=params)


def job_detail(job: str) -> Call[JobDetail]:
    return Call("GET", job_path(job), lambda r: JobDetail.from_json(r.json()))


def cancel(job: str) -> Call[str]:
    """``cancelled``, or ``cancelling`` while its processes still stop."""
    return Call("POST", job_path(job, "cancel"), lambda r: str(r.json()["status"]), retry=False)


def delete(job: str) -> Call[None]:
    return Call("DELETE", job_path(job), lambda r: None, retry=False)


def logs(job: str, task: int | None, tail: int) -> Call[Json]:
    params: dict[str, Any] = {"tail": tail}
    if task is not None:
        params["task"] = task
    return Call("GET", job_path(job, "logs"), _json, params=params)


def files(job: str) -> Call[Json]:
    return Call("GET", job_path(job, "files"), _json)


def file_path(job: str, path: str) -> str:
    return job_path(job, "files", quote(path.lstrip("/"), safe="/"))


def results(
    job: str, *, partial: bool = False, estimator: str | None = None, pages: str | None = None
) -> Call[Json]:
    params: dict[str, Any] = {}
    if partial:
        params["partial"] = "true"
    if estimator is not None:
        params["estimator"] = estimator
    if pages is not None:
        params["pages"] = pages
    return Call("GET", job_path(job, "results"), _json, params=params)


def confidence(job: str, sample_index: int) -> Call[Json]:
    return Call("GET", job_path(job, "results", "confidence", str(sample_index)), _json)


def structure(job: str, rank: int) -> Call[str]:
    """The ranked model (rank 1 = best) as mmCIF text."""
    return Call("GET", job_path(job, "results", "structure", str(rank)), lambda r: r.text)


def services() -> Call[list[Json]]:
    return Call("GET", "/api/services", lambda r: list(r.json()["services"]))


def system_status() -> Call[Json]:
    return Call("GET", "/api/system/status", _json)


# --- The file-upload face (``cyclotron submit``) ---


def upload(paths: Sequence[Path], service: str, user_id: int, key: str | None = None) -> Call[int]:
    """``POST /upload``: ``run.sh`` and its files as one job; its number."""
    return Call(
        "POST",
        "/upload",
        lambda r: int(r.json()["id"]),
        upload={"user_id": str(user_id), "service": service},
        upload_files=tuple(paths),
        headers={IDEMPOTENCY_HEADER: key or new_idempotency_key()},
    )


def upload_status(number: int, response: httpx.Response) -> UploadStatus:
    """A ``GET /download/{id}`` answer: the status it shows, or Completed for a ZIP."""
    if is_zip(response):
        return UploadStatus(number, "Completed", "")
    body = response.json()
    return UploadStatus(int(body.get("id", number)), body["status"], body.get("message", ""))


def is_zip(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/zip")
