"""``Client``: the native API from blocking code (``AsyncClient`` is the same for asyncio)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from cyclotron.client import calls
from cyclotron.client.calls import Call, FileContent
from cyclotron.client.errors import ConnectionFailed, raise_for_answer
from cyclotron.client.models import (
    JobDetail,
    JobFile,
    JobPage,
    Json,
    Submitted,
    TaskLog,
    UploadStatus,
    Validation,
    job_files,
    task_logs,
)
from cyclotron.client.progress import ProgressCallback, Waiting
from cyclotron.client.results import Results, SampleConfidence

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:5000"
CHUNK = 1 << 16


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class Client:
    """A Cyclotron server's native ``/api``.

    A request whose connection fails is sent again, waiting 0.5 s, then twice as long each
    time, for ``retry_for`` seconds: reads, and submissions, which carry one
    ``Idempotency-Key`` for all their tries, so the server makes one job however often one
    is sent. ``transport`` replaces httpx's (tests, proxies).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry_for: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry_for = retry_for
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- sending ---

    def _send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        """The answer to ``call`` (any status), trying again after failed connections."""
        backoff = calls.Backoff(self.retry_for)
        while True:
            try:
                with ExitStack() as opened:
                    files = [
                        ("file", (path.name, opened.enter_context(path.open("rb"))))
                        for path in call.upload_files
                    ]
                    request = self._http.build_request(
                        call.method,
                        call.path,
                        params=call.params,
                        json=call.json,
                        headers=call.headers,
                        data=call.upload,
                        files=files or None,
                    )
                    return self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                delay = backoff.next_delay() if call.retry else None
                if delay is None:
                    raise ConnectionFailed(f"{call.method} {call.path}: {error}") from error
                time.sleep(delay)

    def _call(self, call: Call[T]) -> T:
        response = self._send(call)
        raise_for_answer(response)
        return call.read(response)

    @contextmanager
    def _streamed(self, call: Call[Any]) -> Iterator[httpx.Response]:
        response = self._send(call, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise_for_answer(response)
            yield response
        finally:
            response.close()

    # --- submitting ---

    def submit(self, body: Json, *, idempotency_key: str | None = None) -> Submitted:
        """Submit a JobSubmission or an AlphaFold 3 body as it is (spec/native.md §4)."""
        return self._call(calls.submission(body, idempotency_key))

    def submit_files(
        self,
        files: Mapping[str, FileContent] | Iterable[PathLike[str]],
        *,
        service: str = "example",
        primaries: int | None = None,
        **options: Any,
    ) -> Submitted:
        """Submit files (``run.sh`` and its inputs, or an engine's input files): paths, or a
        mapping of names to text, bytes or paths. ``options``: ``name``, ``ntasks``,
        ``seeds``, ``priority``, ``options``, ``reuse``."""
        given = calls.files_input(files, primaries)
        return self.submit(calls.native_body(service, given, **options))

    def submit_editor(
        self,
        project: Json | str | PathLike[str],
        *,
        service: str,
        primaries: int | None = None,
        **options: Any,
    ) -> Submitted:
        """Submit a YAPTIDE editor project (a dict, or a JSON file) to a simulation service."""
        given = calls.editor_input(project, primaries)
        return self.submit(calls.native_body(service, given, **options))

    def submit_alphafold(self, job: Json | str | PathLike[str]) -> Submitted:
        """Submit an AlphaFold 3 input (a dict, or a JSON file) as it is."""
        return self.submit(calls.alphafold_body(job))

    def validate(self, body: Json) -> Validation:
        """What a submission of ``body`` would meet, without creating anything."""
        return self._call(calls.validation(body))

    # --- jobs ---

    def jobs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        service: str | None = None,
        search: str | None = None,
        page: int = 1,
        page_size: int = 20,
        user_id: int | None = None,
    ) -> JobPage:
        """One page of the caller's jobs (an admin's: everyone's), newest first."""
        return self._call(calls.job_list(status, service, search, page, page_size, user_id))

    def job(self, job: str | int) -> JobDetail:
        """One job with its tasks, by id or number."""
        return self._call(calls.job_detail(str(job)))

    def cancel(self, job: str | int) -> str:
        """Cancel a job: ``cancelled``, or ``cancelling`` while its tasks still stop."""
        return self._call(calls.cancel(str(job)))

    def delete(self, job: str | int) -> None:
        """Delete an ended job, its events and its files."""
        self._call(calls.delete(str(job)))

    def wait(
        self,
        job: str | int,
        on_progress: ProgressCallback | None = None,
        *,
        timeout: float | None = None,
    ) -> JobDetail:
        """Follow the job's progress until it ends, calling ``on_progress`` with each event
        (a snapshot first); reconnects where it left off. WaitTimeout after ``timeout`` s."""
        waiting = Waiting(str(job), on_progress, timeout, self.retry_for)
        while True:
            waiting.check_deadline()
            try:
                if self._follow(waiting):
                    return self.job(job)
                time.sleep(waiting.connection_failed())
            except httpx.TransportError as error:
                time.sleep(waiting.connection_failed(error))

    def _follow(self, waiting: Waiting) -> bool:
        """Read one connection's events; True once the job has ended."""
        request = self._http.build_request(
            "GET", waiting.path, headers=waiting.headers(), timeout=waiting.timeout()
        )
        response = self._http.send(request, stream=True)
        try:
            if response.status_code == 204:  # the terminal event was the last one read
                return True
            if response.status_code >= 400:
                response.read()
                raise_for_answer(response)
            return any(waiting.line(line) for line in response.iter_lines())
        finally:
            response.close()

    # --- outputs ---

    def logs(self, job: str | int, *, task: int | None = None, tail: int = 65536) -> list[TaskLog]:
        """The last ``tail`` bytes of each task's stdout and stderr."""
        return task_logs(self._call(calls.logs(str(job), task, tail)))

    def files(self, job: str | int) -> list[JobFile]:
        """The files of the job's directory, with sizes and SHA-256."""
        return job_files(self._call(calls.files(str(job))))

    def file(self, job: str | int, path: str) -> bytes:
        """One file's content (``path`` relative to the job's directory)."""
        return self._call(Call("GET", calls.file_path(str(job), path), lambda r: r.content))

    def download(self, job: str | int, path: str, target: str | PathLike[str]) -> Path:
        """Save one file of the job, streamed, to ``target``."""
        call: Call[None] = Call("GET", calls.file_path(str(job), path), lambda r: None)
        return self._save(call, Path(target))

    def download_results(self, job: str | int, target: str | PathLike[str]) -> Path:
        """Save a completed job's results ZIP, streamed, to ``target``."""
        call: Call[None] = Call("GET", calls.job_path(str(job), "results/download"), lambda r: None)
        return self._save(call, Path(target))

    def _save(self, call: Call[Any], target: Path) -> Path:
        with self._streamed(call) as response, target.open("wb") as handle:
            for chunk in response.iter_bytes(CHUNK):
                handle.write(chunk)
        return target

    def results(
        self,
        job: str | int,
        *,
        partial: bool = False,
        estimator: str | None = None,
        pages: str | None = None,
    ) -> Results:
        """The results, simulations' estimators as NumPy arrays; ``partial`` merges the
        tasks completed so far of a running job; ``pages`` like ``0-1,3``."""
        body = self._call(
            calls.results(str(job), partial=partial, estimator=estimator, pages=pages)
        )
        return Results.from_json(body)

    def confidence(self, job: str | int, sample_index: int) -> SampleConfidence:
        """An AlphaFold 3 sample's pLDDT and PAE."""
        return SampleConfidence.from_json(self._call(calls.confidence(str(job), sample_index)))

    def structure(self, job: str | int, rank: int = 1) -> str:
        """An AlphaFold 3 ranked model (rank 1 = best) as mmCIF text."""
        return self._call(calls.structure(str(job), rank))

    # --- the server ---

    def services(self) -> list[Json]:
        return self._call(calls.services())

    def system_status(self) -> Json:
        return self._call(calls.system_status())

    # --- the file-upload face ---

    def upload(
        self,
        paths: Sequence[str | PathLike[str]],
        *,
        service: str = "example",
        user_id: int = 0,
        idempotency_key: str | None = None,
    ) -> int:
        """Upload ``run.sh`` and its files as a job of the file-upload face; its number."""
        found = [Path(p) for p in paths]
        return self._call(calls.upload(found, service, user_id, idempotency_key))

    def upload_status(self, number: int) -> UploadStatus:
        """A file-upload job's status (``Completed``, ``Failed``, ``Running``, …)."""
        call: Call[None] = Call("GET", f"/download/{number}", lambda r: None)
        with self._streamed(call) as response:
            if not calls.is_zip(response):
                response.read()
            return calls.upload_status(number, response)

    def download_upload(self, number: int, target: str | PathLike[str]) -> UploadStatus:
        """Save a Completed file-upload job's ZIP to ``target``; its status either way."""
        call: Call[None] = Call("GET", f"/download/{number}", lambda r: None)
        with self._streamed(call) as response:
            if not calls.is_zip(response):
                response.read()
                return calls.upload_status(number, response)
            with Path(target).open("wb") as handle:
                for chunk in response.iter_bytes(CHUNK):
                    handle.write(chunk)
        return UploadStatus(number, "Completed", "")
