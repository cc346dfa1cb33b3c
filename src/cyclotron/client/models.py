"""What the native API answers, as typed values (spec/native.md §4–§11).

Each value keeps the answer it was read from in ``raw``, so fields this client does not
know yet (a newer server's, or a service's own such as AlphaFold 3's ``num_samples``) are
still at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL = frozenset({"completed", "failed", "cancelled"})
Json = dict[str, Any]


def timestamp(text: str | None) -> datetime | None:
    """An RFC 3339 time as the server writes it (``…Z``), or None."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _required_time(text: str) -> datetime:
    found = timestamp(text)
    assert found is not None, "the server always sends this time"
    return found


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the new job's id, its status and its number."""

    id: str
    status: str
    number: int

    @classmethod
    def from_json(cls, body: Json) -> Submitted:
        return cls(body["id"], body["status"], int(body["number"]))


@dataclass(frozen=True)
class JobError:
    """Why a job failed: a code (``task_failed``, ``lost``, …) and a message."""

    code: str
    message: str


@dataclass(frozen=True)
class Job:
    """One job as the list shows it."""

    id: str
    number: int
    name: str
    service: str
    user_id: int
    status: str
    stage: str
    percent: float
    ntasks: int
    tasks_done: int
    tasks_failed: int
    files_available: bool
    error: JobError | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    raw: Json = field(repr=False, compare=False)

    @property
    def done(self) -> bool:
        """Whether the job has ended (completed, failed or cancelled)."""
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, body: Json) -> Job:
        return cls(**_job_fields(body))


def _job_fields(body: Json) -> Json:
    error = body.get("error")
    return {
        "id": body["id"],
        "number": int(body["number"]),
        "name": body["name"],
        "service": body["service"],
        "user_id": int(body["user_id"]),
        "status": body["status"],
        "stage": body["stage"],
        "percent": float(body["percent"]),
        "ntasks": int(body["ntasks"]),
        "tasks_done": int(body["tasks_done"]),
        "tasks_failed": int(body["tasks_failed"]),
        "files_available": bool(body["files_available"]),
        "error": JobError(error["code"], error["message"]) if error else None,
        "created_at": _required_time(body["created_at"]),
        "updated_at": _required_time(body["updated_at"]),
        "started_at": timestamp(body.get("started_at")),
        "finished_at": timestamp(body.get("finished_at")),
        "raw": body,
    }


@dataclass(frozen=True)
class Task:
    """One task of a job: its state, progress and outcome."""

    index: int
    state: str
    percent: float
    seed: int
    requested_primaries: float | None
    simulated_primaries: float | None
    eta_seconds: float | None
    executor: str
    attempt: int
    exit_code: int | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_json(cls, body: Json) -> Task:
        return cls(
            index=int(body["index"]),
            state=body["state"],
            percent=float(body["percent"]),
            seed=int(body["seed"]),
            requested_primaries=body.get("requested_primaries"),
            simulated_primaries=body.get("simulated_primaries"),
            eta_seconds=body.get("eta_seconds"),
            executor=body.get("executor", ""),
            attempt=int(body.get("attempt", 1)),
            exit_code=body.get("exit_code"),
            error=body.get("error"),
            started_at=timestamp(body.get("started_at")),
            finished_at=timestamp(body.get("finished_at")),
        )


@dataclass(frozen=True)
class JobDetail(Job):
    """One job with its tasks, seeds, input and warnings."""

    priority: int = 0
    seeds: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    last_event_seq: int = 0
    input_kind: str = ""
    input_key: str | None = None
    input_files: tuple[tuple[str, int], ...] = ()
    tasks: tuple[Task, ...] = ()

    @classmethod
    def from_json(cls, body: Json) -> JobDetail:
        given = body.get("input") or {}
        return cls(
            **_job_fields(body),
            priority=int(body.get("priority", 0)),
            seeds=tuple(int(s) for s in body.get("seeds", ())),
            warnings=tuple(body.get("warnings", ())),
            last_event_seq=int(body.get("last_event_seq", 0)),
            input_kind=given.get("kind", ""),
            input_key=given.get("key"),
            input_files=tuple((f["name"], int(f["size"])) for f in given.get("files", ())),
            tasks=tuple(Task.from_json(t) for t in body.get("tasks", ())),
        )


@dataclass(frozen=True)
class JobPage:
    """One page of the job list, newest first, and how many jobs match in all."""

    jobs: tuple[Job, ...]
    total: int
    page: int
    page_size: int

    @classmethod
    def from_json(cls, body: Json) -> JobPage:
        return cls(
            tuple(Job.from_json(j) for j in body["jobs"]),
            int(body["total"]),
            int(body["page"]),
            int(body["page_size"]),
        )


@dataclass(frozen=True)
class TaskLog:
    """The tail of one task's stdout and stderr."""

    index: int
    state: str
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_size: int
    stderr_size: int
    truncated: bool

    @classmethod
    def from_json(cls, body: Json) -> TaskLog:
        return cls(
            int(body["index"]),
            body["state"],
            body.get("exit_code"),
            body["stdout"],
            body["stderr"],
            int(body["stdout_size"]),
            int(body["stderr_size"]),
            bool(body["truncated"]),
        )


def task_logs(body: Json) -> list[TaskLog]:
    return [TaskLog.from_json(t) for t in body["tasks"]]


@dataclass(frozen=True)
class JobFile:
    """One file of a job's directory (``input/…``, ``tasks/<i>/…``, ``logs/…``, ``results/…``)."""

    path: str
    size: int
    sha256: str | None
    modified_at: datetime | None
    task_index: int | None

    @classmethod
    def from_json(cls, body: Json) -> JobFile:
        return cls(
            body["path"],
            int(body["size"]),
            body.get("sha256"),
            timestamp(body.get("modified_at")),
            body.get("task_index"),
        )


def job_files(body: Json) -> list[JobFile]:
    return [JobFile.from_json(f) for f in body["files"]]


@dataclass(frozen=True)
class Validation:
    """What ``POST /api/validate`` found: errors, warnings and the service's estimates."""

    valid: bool
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    estimates: Json

    @classmethod
    def from_json(cls, body: Json) -> Validation:
        return cls(
            bool(body["valid"]),
            tuple(body.get("errors", ())),
            tuple(body.get("warnings", ())),
            dict(body.get("estimates") or {}),
        )


@dataclass(frozen=True)
class ProgressEvent:
    """One message of a job's progress stream (spec/native.md §11).

    ``type`` is ``snapshot``, ``stage_change``, ``progress``, ``task_state``, ``completed``,
    ``failed`` or ``cancelled`` (clients must accept others); the fields that type does not
    carry are None.
    """

    type: str
    seq: int | None
    percent: float | None
    stage: str | None
    status: str | None
    task_index: int | None
    task_percent: float | None
    raw: Json = field(repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL

    @classmethod
    def from_json(cls, body: Json) -> ProgressEvent:
        seq = body.get("seq")
        return cls(
            type=str(body.get("type", "")),
            seq=int(seq) if seq is not None else None,
            percent=body.get("percent"),
            stage=body.get("stage"),
            status=body.get("status"),
            task_index=body.get("task_index"),
            task_percent=body.get("task_percent"),
            raw=body,
        )


@dataclass(frozen=True)
class UploadStatus:
    """A job of the file-upload face: its number, status word (``Completed``, …) and message."""

    id: int
    status: str
    message: str
