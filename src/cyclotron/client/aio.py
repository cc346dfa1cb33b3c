"""``AsyncClient``: the native API from asyncio code, method for method like ``Client``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
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
    Validation,
    job_files,
    task_logs,
)
from cyclotron.client.progress import ProgressCallback, Waiting
from cyclotron.client.results import Results, SampleConfidence
from cyclotron.client.sync import CHUNK, DEFAULT_URL, auth_headers

T = TypeVar("T")


class AsyncClient:
    """A Cyclotron server's native ``/api``, for asyncio; see ``Client``."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry_for: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry_for = retry_for
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=auth_headers(api_key),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- sending ---

    async def _send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
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
                    return await self._http.send(request, stream=stream)
            except httpx.TransportError as error:
                delay = backoff.next_delay() if call.retry else None
                if delay is None:
                    raise ConnectionFailed(f"{call.method} {call.path}: {error}") from error
                await asyncio.sleep(delay)

    async def _call(self, call: Call[T]) -> T:
        response = await self._send(call)
        raise_for_answer(response)
        return call.read(response)

    @asynccontextmanager
    async def _streamed(self, call: Call[Any]) -> AsyncIterator[httpx.Response]:
        response = await self._send(call, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                raise_for_answer(response)
            yield response
        finally:
            await response.aclose()

    # --- submitting ---

    async def submit(self, body: Json, *, idempotency_key: str | None = None) -> Submitted:
        """Submit a JobSubmission or an AlphaFold 3 body as it is (spec/native.md §4)."""
        return await self._call(calls.submission(body, idempotency_key))

    async def submit_files(
        self,
        files: Mapping[str, FileContent] | Iterable[PathLike[str]],
        *,
        service: str = "example",
        primaries: int | None = None,
        **options: Any,
    ) -> Submitted:
        """Submit files; see ``Client.submit_files``."""
        given = calls.files_input(files, primaries)
        return await self.submit(calls.native_body(service, given, **options))

    async def submit_editor(
        self,
        project: Json | str | PathLike[str],
        *,
        service: str,
        primaries: int | None = None,
        **options: Any,
    ) -> Submitted:
        """Submit a YAPTIDE editor project to a simulation service."""
        given = calls.editor_input(project, primaries)
        return await self.submit(calls.native_body(service, given, **options))

    async def submit_alphafold(self, job: Json | str | PathLike[str]) -> Submitted:
        """Submit an AlphaFold 3 input as it is."""
        return await self.submit(calls.alphafold_body(job))

    async def validate(self, body: Json) -> Validation:
        return await self._call(calls.validation(body))

    # --- jobs ---

    async def jobs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        service: str | None = None,
        search: str | None = None,
        page: int = 1,
        page_size: int = 20,
        user_id: int | None = None,
    ) -> JobPage:
        return await self._call(calls.job_list(status, service, search, page, page_size, user_id))

    async def job(self, job: str | int) -> JobDetail:
        return await self._call(calls.job_detail(str(job)))

    async def cancel(self, job: str | int) -> str:
        return await self._call(calls.cancel(str(job)))

    async def delete(self, job: str | int) -> None:
        await self._call(calls.delete(str(job)))

    async def wait(
        self,
        job: str | int,
        on_progress: ProgressCallback | None = None,
        *,
        timeout: float | None = None,
    ) -> JobDetail:
        """Follow the job's progress until it ends; see ``Client.wait``."""
        waiting = Waiting(str(job), on_progress, timeout, self.retry_for)
        while True:
            waiting.check_deadline()
            try:
                if await self._follow(waiting):
                    return await self.job(job)
                await asyncio.sleep(waiting.connection_failed())
            except httpx.TransportError as error:
                await asyncio.sleep(waiting.connection_failed(error))

    async def _follow(self, waiting: Waiting) -> bool:
        request = self._http.build_request(
            "GET", waiting.path, headers=waiting.headers(), timeout=waiting.timeout()
        )
        response = await self._http.send(request, stream=True)
        try:
            if response.status_code == 204:
                return True
            if response.status_code >= 400:
                await response.aread()
                raise_for_answer(response)
            async for line in response.aiter_lines():
                if waiting.line(line):
                    return True
            return False
        finally:
            await response.aclose()

    # --- outputs ---

    async def logs(
        self, job: str | int, *, task: int | None = None, tail: int = 65536
    ) -> list[TaskLog]:
        return task_logs(await self._call(calls.logs(str(job), task, tail)))

    async def files(self, job: str | int) -> list[JobFile]:
        return job_files(await self._call(calls.files(str(job))))

    async def file(self, job: str | int, path: str) -> bytes:
        return await self._call(Call("GET", calls.file_path(str(job), path), lambda r: r.content))

    async def download(self, job: str | int, path: str, target: str | PathLike[str]) -> Path:
        call: Call[None] = Call("GET", calls.file_path(str(job), path), lambda r: None)
        return await self._save(call, Path(target))

    async def download_results(self, job: str | int, target: str | PathLike[str]) -> Path:
        call: Call[None] = Call("GET", calls.job_path(str(job), "results/download"), lambda r: None)
        return await self._save(call, Path(target))

    async def _save(self, call: Call[Any], target: Path) -> Path:
        async with self._streamed(call) as response:
            with target.open("wb") as handle:
                async for chunk in response.aiter_bytes(CHUNK):
                    handle.write(chunk)
        return target

    async def results(
        self,
        job: str | int,
        *,
        partial: bool = False,
        estimator: str | None = None,
        pages: str | None = None,
    ) -> Results:
        call = calls.results(str(job), partial=partial, estimator=estimator, pages=pages)
        return Results.from_json(await self._call(call))

    async def confidence(self, job: str | int, sample_index: int) -> SampleConfidence:
        body = await self._call(calls.confidence(str(job), sample_index))
        return SampleConfidence.from_json(body)

    async def structure(self, job: str | int, rank: int = 1) -> str:
        return await self._call(calls.structure(str(job), rank))

    # --- the server ---

    async def services(self) -> list[Json]:
        return await self._call(calls.services())

    async def system_status(self) -> Json:
        return await self._call(calls.system_status())
