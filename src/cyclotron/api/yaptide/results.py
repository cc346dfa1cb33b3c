"""Results, estimators, inputs and logs of a simulation (yaptide.md §3.14–§3.17)."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Request, Response

from cyclotron.api.deps import CoreDep
from cyclotron.api.yaptide.auth import UserDep
from cyclotron.api.yaptide.errors import YaptideRoute
from cyclotron.api.yaptide.http import answer, job_id_param
from cyclotron.domain.records import JobRecord
from cyclotron.domain.states import JobState
from cyclotron.errors import InputError, NotFound
from cyclotron.estimators.merge import order_by_outputs
from cyclotron.estimators.model import find_estimator, page_number
from cyclotron.estimators.store import read_results, results_path
from cyclotron.services.core import Core
from cyclotron.services.jobs.logs import job_log_texts
from cyclotron.services.yaptide.simulations import (
    EDITOR,
    find_simulation,
    read_input_files,
    read_project,
)

router = APIRouter(route_class=YaptideRoute, tags=["YAPTIDE results"])

MAX_PAGE_NUMBERS = 10_000
RANGE_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
CACHE_ENTRIES = 16
CACHEABLE = "private, no-cache"


class _ResultsCache:
    """Parsed results of recently read jobs, keyed by file identity (they never change)."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, int, int], tuple[str, list[dict[str, Any]]]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, core: Core, job: JobRecord) -> tuple[str, list[dict[str, Any]]] | None:
        path = results_path(core.files.results_dir(job.id))
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        estimators = read_results(core.files.results_dir(job.id))
        if estimators is None:
            return None
        names = job.attrs.get("output_names")
        if job.attrs.get("input_type") == EDITOR and isinstance(names, list):
            estimators = order_by_outputs(estimators, [str(n) for n in names])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with self._lock:
            self._entries[key] = (digest, estimators)
            while len(self._entries) > CACHE_ENTRIES:
                self._entries.popitem(last=False)
        return digest, estimators


_cache = _ResultsCache()


def parse_page_numbers(raw: str) -> list[int]:
    numbers: set[int] = set()
    for item in raw.split(","):
        match = RANGE_ITEM.match(item)
        if match is None:
            raise InputError(f"Invalid page_numbers item {item.strip()!r}; use N or A-B")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low > high:
            raise InputError(f"Invalid page range {low}-{high}")
        if high - low + 1 + len(numbers) > MAX_PAGE_NUMBERS:
            raise InputError(f"At most {MAX_PAGE_NUMBERS} page numbers per request")
        numbers.update(range(low, high + 1))
    return sorted(numbers)


def _completed_results(
    core: Core, request: Request, user_id: int, unavailable: str
) -> tuple[JobRecord, str, list[dict[str, Any]]]:
    job = find_simulation(core, job_id_param(request), user_id)
    cached = _cache.get(core, job) if job.state == JobState.COMPLETED else None
    if cached is None:
        raise NotFound(unavailable)
    return job, cached[0], cached[1]


def _etag(digest: str, request: Request, route: str) -> str:
    items = sorted(
        (k, v)
        for k, v in request.query_params.multi_items()
        if k in ("job_id", "estimator_name", "page_number", "page_numbers")
    )
    text = f"{route}\x00{digest}\x00{items!r}"
    return f'W/"{hashlib.sha256(text.encode()).hexdigest()[:40]}"'


def _cached_answer(request: Request, etag: str, body: dict[str, Any]) -> Response:
    headers = {"ETag": etag, "Cache-Control": CACHEABLE, "Vary": "Origin, Accept-Encoding"}
    wanted = request.headers.get("if-none-match", "")
    if etag in [tag.strip() for tag in wanted.split(",")] or wanted.strip() == "*":
        return Response(status_code=304, headers=headers)
    return answer(request, body, headers=headers)


def _results_body(request: Request, estimators: list[dict[str, Any]]) -> dict[str, Any]:
    params = request.query_params
    name = params.get("estimator_name") or None
    single = params.get("page_number") or None
    several = params.get("page_numbers") or None
    if name is None:
        if single is not None or several is not None:
            raise InputError("estimator_name is required with page_number(s)")
        return {"message": "Results", "estimators": estimators}
    estimator = find_estimator(estimators, name)
    if estimator is None:
        raise NotFound(f"Estimator '{name}' not found")
    pages = {page_number(p): p for p in estimator["pages"]}
    if single is not None:
        if not single.strip().isdigit():
            raise InputError("page_number must be an integer >= 0")
        number = int(single)
        if number not in pages:
            raise NotFound(f"Page {number} not found in estimator '{estimator['name']}'")
        return {"message": "Results", "page": pages[number]}
    if several is not None:
        chosen = [pages[n] for n in parse_page_numbers(several) if n in pages]
        return {"message": "Results", "pages": chosen}
    return {"message": "Results", **estimator}


@router.get("/results", summary="A completed simulation's results")
def results(request: Request, core: CoreDep, user: UserDep) -> Response:
    _, digest, estimators = _completed_results(
        core, request, user.owner_id, "Results are unavailable"
    )
    body = _results_body(request, estimators)
    return _cached_answer(request, _etag(digest, request, "results"), body)


@router.get("/estimators", summary="Names and pages of a completed simulation's estimators")
def estimators(request: Request, core: CoreDep, user: UserDep) -> Response:
    _, digest, found = _completed_results(
        core, request, user.owner_id, "Estimators are unavailable"
    )
    listed = [
        {
            "name": estimator["name"],
            "pages_metadata": [
                {
                    "page_number": page_number(page),
                    "page_name": page["data"]["name"],
                    "page_dimension": page["dimensions"],
                }
                for page in estimator["pages"]
            ],
        }
        for estimator in found
    ]
    body = {"message": "Estimators metadata", "estimators_metadata": listed}
    return _cached_answer(request, _etag(digest, request, "estimators"), body)


@router.get("/inputs", summary="A simulation's input: project and files")
def inputs(request: Request, core: CoreDep, user: UserDep) -> Response:
    job = find_simulation(core, job_id_param(request), user.owner_id)
    input_type = str(job.attrs.get("input_type", "files"))
    files = read_input_files(core, job)
    body: dict[str, Any] = {
        "input_type": input_type.upper(),
        "input_files": files,
        "number_of_all_primaries": job.attrs.get("primaries"),
    }
    if input_type == EDITOR:
        project = read_project(core, job)
        if project is None:
            raise NotFound("Input of simulation is unavailable")
        body["input_json"] = project
    return answer(request, {"message": "Input of simulation", "input": body})


@router.get("/logfiles", summary="A simulation's logs, by task and for the job")
def logfiles(request: Request, core: CoreDep, user: UserDep) -> Response:
    job = find_simulation(core, job_id_param(request), user.owner_id)
    texts = job_log_texts(core, job)
    if not texts:
        raise NotFound("Logfiles are unavailable")
    return answer(request, {"message": "Logfiles", "logfiles": texts})
