"""SLURM as text: batch options, sbatch scripts, and the commands and parsers around them.

Everything here is a pure function over strings, so the server can build what it sends to a
cluster, and read what comes back, without a cluster (the unit tests use output captured from
SLURM 22.05). Running the commands is :mod:`cyclotron.executors.slurm.remote`'s job.

The rules for user-supplied options are those of spec/yaptide.md section 6: names and values
use a small character set, so nothing needs quoting, and the options the server owns (the
array range, the dependency, ``--parsable``, the log files) cannot be set by users.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from cyclotron.domain.states import JobState, TaskState
from cyclotron.errors import InputError

DEFAULT_ARRAY_TIME = "00:59:59"

# The option names sbatch must not receive from users, with their one-letter forms.
SERVER_OWNED_OPTIONS = ("array", "dependency", "parsable", "output", "error")
_SERVER_OWNED_SHORT = {"a": "array", "d": "dependency", "o": "output", "e": "error"}
# Not in the spec's list, but it makes sbatch block until the job ends, so the submission
# would time out and lose the job id.
_BLOCKING_OPTIONS = ("wait",)
_BLOCKING_SHORT = {"W": "wait"}

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_VALUE = re.compile(r"[A-Za-z0-9_.,=/:-]+")
_HEADER_LINE = re.compile(r"#SBATCH [A-Za-z0-9_.,=/: #-]*")
_JOB_ID = re.compile(r"[0-9]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Absolute paths sbatch can take unquoted in #SBATCH lines; '%' would be a filename pattern.
_CLUSTER_PATH = re.compile(r"/[A-Za-z0-9_.,=/:+@-]*")
_SHOWN = 60  # characters of a rejected item quoted back in an error

ARRAY_OUTPUT = "task_%a.out"
ARRAY_ERROR = "task_%a.err"
COLLECT_OUTPUT = "collect.out"
COLLECT_ERROR = "collect.err"

SQUEUE_FORMAT = "%F|%K|%T"  # array job id (or job id), array task id (or N/A), long state


class UnexpectedOutput(ValueError):
    """A SLURM command answered something these parsers cannot read."""


@dataclass(frozen=True)
class BatchOptions:
    """Validated sbatch options for a batch job's two scripts.

    Options map a name without dashes to its value; headers are the non-empty ``#SBATCH``
    lines the user added. The array options always carry a time limit.
    """

    array_options: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({"time": DEFAULT_ARRAY_TIME})
    )
    array_header: tuple[str, ...] = ()
    collect_options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    collect_header: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShellVariable:
    """An argument that the job's shell expands, such as the array task index."""

    name: str

    def __post_init__(self) -> None:
        if not _ENV_NAME.fullmatch(self.name):
            raise ValueError(f"not a shell variable name: {self.name!r}")

    def render(self) -> str:
        return f'"${{{self.name}}}"'


ARRAY_TASK_ID = ShellVariable("SLURM_ARRAY_TASK_ID")

Argument = str | ShellVariable
CommandLine = Sequence[Argument]


@dataclass(frozen=True)
class TaskEffect:
    """What a SLURM state means for a Cyclotron task.

    ``target`` is None for a state this table does not know: leave the task as it is.
    ``note`` says why a task failed (for its log), or names the unknown state.
    """

    target: TaskState | None
    note: str | None = None


# --- batch options ----------------------------------------------------------------------------


def batch_options(raw: object) -> BatchOptions:
    """Validate a request's ``batch_options`` (either shape of spec section 6).

    ``cluster_name`` is ignored here (the caller resolves the cluster); other unknown keys are
    ignored as the original server did. Raises :class:`InputError` naming the first bad item.
    """
    if raw is None:
        return BatchOptions()
    if not isinstance(raw, Mapping):
        raise InputError("batch_options must be an object")
    slurm = _options(raw.get("slurm_options"), "slurm_options")
    array = _options(raw.get("array_options"), "array_options")
    merged = {**slurm, **array}
    array_header = _header(raw.get("array_header"), "array_header")
    if not {"time", "t"} & (merged.keys() | _header_names(array_header)):
        merged["time"] = DEFAULT_ARRAY_TIME
    return BatchOptions(
        array_options=MappingProxyType(merged),
        array_header=array_header,
        collect_options=MappingProxyType(_options(raw.get("collect_options"), "collect_options")),
        collect_header=_header(raw.get("collect_header"), "collect_header"),
    )


def _options(raw: object, key: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError(f"batch_options.{key} must be an object of option: value")
    options: dict[str, str] = {}
    for raw_name, raw_value in raw.items():
        name = str(raw_name).lstrip("-")
        item = f"batch_options.{key}.{_shown(str(raw_name))}"
        if not _NAME.fullmatch(name):
            raise InputError(f"{item}: an option name uses only A-Z a-z 0-9 _ -")
        _refuse_owned(name, item)
        options[name] = _value(raw_value, item)
    return options


def _value(raw: object, item: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InputError(f"{item}: the value must be a string or a number")
    value = str(raw)
    if not _VALUE.fullmatch(value):
        raise InputError(
            f"{item}: the value {_shown(value)!r} uses characters other than "
            "A-Z a-z 0-9 _ . , = / : -"
        )
    return value


def _refuse_owned(name: str, item: str) -> None:
    """Refuse the server's options: in full, abbreviated (sbatch takes unique prefixes), short."""
    if len(name) == 1:
        owned = _SERVER_OWNED_SHORT.get(name) or _BLOCKING_SHORT.get(name)
    else:
        lowered = name.lower()
        owned = next(
            (o for o in SERVER_OWNED_OPTIONS + _BLOCKING_OPTIONS if o.startswith(lowered)), None
        )
    if owned is not None:
        raise InputError(f"{item}: the option --{owned} is set by the server")


def _header(raw: object, key: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, str):
        raise InputError(f"batch_options.{key} must be a string of #SBATCH lines")
    lines: list[str] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        line = line.rstrip()
        if not line:
            continue
        item = f"batch_options.{key} line {number}"
        if not _HEADER_LINE.fullmatch(line):
            raise InputError(
                f"{item}: {_shown(line)!r} must start with '#SBATCH ' and use only "
                "A-Z a-z 0-9 _ . , = / : - # and spaces"
            )
        for name in _header_names([line]):
            _refuse_owned(name, item)
        lines.append(line)
    return tuple(lines)


def _header_names(lines: Iterable[str]) -> set[str]:
    """The option names (without dashes) that header lines set."""
    names = set()
    for line in lines:
        for word in line.split()[1:]:
            name = word.lstrip("-").split("=", 1)[0]
            if word.startswith("-") and name:
                names.add(name)
    return names


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def option_words(options: Mapping[str, str]) -> list[str]:
    """sbatch arguments for validated options: ``--name=value``, or ``-n value`` for one letter."""
    words: list[str] = []
    for name, value in options.items():
        words.append(f"-{name} {value}" if len(name) == 1 else f"--{name}={value}")
    return words


# --- scripts ----------------------------------------------------------------------------------


def array_script(
    job_dir: str,
    ntasks: int,
    options: BatchOptions,
    commands: Sequence[CommandLine],
    *,
    job_name: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> str:
    """The sbatch script of a job's task array ``1..ntasks``.

    Each task ``cd``s into ``job_dir`` (an absolute path on the cluster, which must exist when
    the job starts) and runs ``commands`` in order, stopping at the first failure. Its output
    and error go to ``task_<index>.out`` and ``task_<index>.err`` in ``job_dir``. Arguments are
    quoted; pass :data:`ARRAY_TASK_ID` for the task's index.
    """
    if ntasks < 1:
        raise ValueError(f"a task array needs at least one task, not {ntasks}")
    directory = _cluster_path(job_dir)
    owned = [
        f"--array=1-{ntasks}",
        f"--output={directory}/{ARRAY_OUTPUT}",
        f"--error={directory}/{ARRAY_ERROR}",
    ]
    return _script(
        owned,
        options.array_options,
        options.array_header,
        directory,
        commands,
        job_name,
        environment,
    )


def collect_script(
    job_dir: str,
    options: BatchOptions,
    commands: Sequence[CommandLine],
    *,
    job_name: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> str:
    """The sbatch script of a job's collect (merge) step, logging to ``collect.out``/``.err``."""
    directory = _cluster_path(job_dir)
    owned = [f"--output={directory}/{COLLECT_OUTPUT}", f"--error={directory}/{COLLECT_ERROR}"]
    return _script(
        owned,
        options.collect_options,
        options.collect_header,
        directory,
        commands,
        job_name,
        environment,
    )


def task_log_paths(job_dir: str, index: int) -> tuple[str, str]:
    """The output and error files of array task ``index`` (1-based) on the cluster."""
    directory = _cluster_path(job_dir)
    return (
        f"{directory}/{ARRAY_OUTPUT.replace('%a', str(index))}",
        f"{directory}/{ARRAY_ERROR.replace('%a', str(index))}",
    )


def _script(
    owned: list[str],
    options: Mapping[str, str],
    header: Sequence[str],
    directory: str,
    commands: Sequence[CommandLine],
    job_name: str | None,
    environment: Mapping[str, str] | None,
) -> str:
    if not commands:
        raise ValueError("a batch script needs at least one command")
    lines = ["#!/bin/bash"]
    if job_name is not None:
        lines.append(f"#SBATCH --job-name={_checked(job_name, _VALUE, 'job name')}")
    lines += [f"#SBATCH {word}" for word in owned + option_words(options)]
    lines += header
    lines += ["", "set -euo pipefail", f"cd -- {shlex.quote(directory)}"]
    for name, value in (environment or {}).items():
        lines.append(f"export {_checked(name, _ENV_NAME, 'variable name')}={shlex.quote(value)}")
    lines += [render_command(command) for command in commands]
    return "\n".join(lines) + "\n"


def render_command(command: CommandLine) -> str:
    """One shell line: strings quoted, :class:`ShellVariable` arguments expanded."""
    if not command:
        raise ValueError("an empty command line")
    return " ".join(
        arg.render() if isinstance(arg, ShellVariable) else shlex.quote(arg) for arg in command
    )


def _cluster_path(path: str) -> str:
    path = path.rstrip("/") or "/"
    if not _CLUSTER_PATH.fullmatch(path) or path == "/" or "/../" in f"{path}/":
        raise ValueError(
            f"job directory {path!r} must be an absolute path of A-Z a-z 0-9 _ . , = / : + @ -"
        )
    return path


def _checked(text: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(text):
        raise ValueError(f"invalid {what}: {text!r}")
    return text


# --- submission -------------------------------------------------------------------------------


def sbatch_command(script_path: str, dependency: str | None = None) -> str:
    """``sbatch --parsable`` for a script on the cluster, after job ``dependency`` if given.

    The dependency is ``afterany``: the collect step runs however the array ended.
    """
    argv = ["sbatch", "--parsable"]
    if dependency is not None:
        argv.append(f"--dependency=afterany:{_job_id(dependency)}")
    argv.append(script_path)
    return shlex.join(argv)


def parse_sbatch(stdout: str) -> str:
    """The job id that ``sbatch --parsable`` printed (``id`` or ``id;cluster``)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    job_id = lines[-1].split(";", 1)[0] if lines else ""
    if not _JOB_ID.fullmatch(job_id):
        raise UnexpectedOutput(f"sbatch printed no job id: {_shown(stdout.strip())!r}")
    return job_id


def scancel_command(job_ids: Iterable[str]) -> str:
    """``scancel`` for whole jobs (an array id cancels every task of the array)."""
    return shlex.join(["scancel", *_job_ids(job_ids)])


# --- status -----------------------------------------------------------------------------------

JobKey = tuple[str, int | None]
"""A job id, with the array task index for an array task (None for a plain job)."""


def squeue_command(job_ids: Iterable[str]) -> str:
    """One ``squeue`` call for many jobs, every array task on its own line, ended ones included.

    Ended jobs stay visible for the cluster's ``MinJobAge`` (300 s by default).
    """
    ids = ",".join(_job_ids(job_ids))
    return shlex.join(
        [
            "squeue",
            "--states=all",
            "--noheader",
            "--array",
            f"--jobs={ids}",
            f"--format={SQUEUE_FORMAT}",
        ]
    )


def parse_squeue(stdout: str, *, exit_status: int = 0, stderr: str = "") -> dict[JobKey, str]:
    """The state of each job and array task in :func:`squeue_command`'s output.

    Given one job id SLURM no longer knows, squeue exits 1 with "Invalid job id specified";
    that is read as "no jobs". Any other failure raises :class:`UnexpectedOutput`.
    """
    if exit_status != 0:
        if "Invalid job id specified" in stderr:
            return {}
        raise UnexpectedOutput(
            f"squeue failed with exit status {exit_status}: {_shown(stderr.strip())!r}"
        )
    states: dict[JobKey, str] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|")
        if len(parts) != 3 or not _JOB_ID.fullmatch(parts[0]):
            raise UnexpectedOutput(f"unexpected squeue line: {_shown(line)!r}")
        job_id, task, state = parts
        if task == "N/A":
            states[(job_id, None)] = state
        elif _JOB_ID.fullmatch(task):
            states[(job_id, int(task))] = state
        else:
            raise UnexpectedOutput(f"unexpected squeue array index: {_shown(line)!r}")
    return states


def sacct_command(job_ids: Iterable[str]) -> str:
    """One ``sacct`` call for many jobs (needs accounting storage on the cluster).

    ``--allocations`` leaves out job steps. SLURM 22.05 shows pending array tasks as one
    range (``123_[2-5]``), which :func:`parse_sacct` expands.
    """
    ids = ",".join(_job_ids(job_ids))
    return shlex.join(
        [
            "sacct",
            "--parsable2",
            "--noheader",
            "--allocations",
            f"--jobs={ids}",
            "--format=JobID,State,ExitCode",
        ]
    )


_SACCT_ID = re.compile(r"(?P<job>[0-9]+)(?:_(?P<task>[0-9]+|\[[0-9,%\-]+\]))?")


def parse_sacct(stdout: str) -> dict[JobKey, str]:
    """The state of each job and array task in :func:`sacct_command`'s output.

    Steps (``123_4.batch``, ``123.0``) and heterogeneous components are skipped; a range of
    array tasks not yet started (``123_[5-7%2]``) gives one entry per task, unless a task
    has its own line: SLURM 22.05 keeps showing the range as PENDING after some of its tasks
    started. ``CANCELLED by 1000`` becomes ``CANCELLED``.
    """
    states: dict[JobKey, str] = {}
    ranges: dict[JobKey, str] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split("|")
        if len(parts) < 2:
            raise UnexpectedOutput(f"unexpected sacct line: {_shown(line)!r}")
        job, state = parts[0], parts[1].split(" ", 1)[0]
        if "." in job or "+" in job:
            continue
        match = _SACCT_ID.fullmatch(job)
        if match is None or not state:
            raise UnexpectedOutput(f"unexpected sacct line: {_shown(line)!r}")
        task = match["task"]
        if task is None:
            states[(match["job"], None)] = state
        elif task.startswith("["):
            for index in _array_range(task[1:-1]):
                ranges[(match["job"], index)] = state
        else:
            states[(match["job"], int(task))] = state
    return {**ranges, **states}


def _array_range(text: str) -> list[int]:
    """``1-3,7`` (with an optional ``%limit``) as a list of indices."""
    indices: list[int] = []
    for part in text.split("%", 1)[0].split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise UnexpectedOutput(f"unexpected array range: {_shown(text)!r}")
        indices.extend(range(int(first), int(last or first) + 1))
    return indices


# --- what states mean -------------------------------------------------------------------------

_PENDING = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"})
# A suspended or stopped task has started and will go on; the others are still ending.
_RUNNING = frozenset(
    {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
)
_FAILED = frozenset(
    {
        "FAILED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
        "SPECIAL_EXIT",
        "REVOKED",
    }
)
ENDED_STATES = frozenset({"COMPLETED", "CANCELLED"} | _FAILED)
"""States in which a SLURM job has ended for good."""


def slurm_state(state: str) -> str:
    """The bare state name: ``CANCELLED by 0`` -> ``CANCELLED``, ``RUNNING+`` -> ``RUNNING``."""
    return state.strip().split(" ", 1)[0].rstrip("+").upper()


def task_effect(state: str) -> TaskEffect:
    """What a SLURM array task state means for its task (spec section 6)."""
    bare = slurm_state(state)
    if bare in _PENDING:
        return TaskEffect(TaskState.PENDING)
    if bare in _RUNNING:
        return TaskEffect(TaskState.RUNNING)
    if bare == "COMPLETED":
        return TaskEffect(TaskState.COMPLETED)
    if bare in _FAILED:
        return TaskEffect(TaskState.FAILED, f"SLURM state {bare}")
    if bare == "CANCELLED":
        return TaskEffect(TaskState.FAILED, "cancelled on the cluster")
    return TaskEffect(None, f"unknown SLURM state {_shown(state)!r}")


def collect_effect(state: str) -> JobState | None:
    """What the collect job's state means for its job, once the array has ended.

    Queued: MERGING_QUEUED; running: MERGING_RUNNING; ended: FAILED, which the caller applies
    only when no final results were stored ("collect step produced no results"). None for an
    unknown state.
    """
    bare = slurm_state(state)
    if bare in _PENDING:
        return JobState.MERGING_QUEUED
    if bare in _RUNNING:
        return JobState.MERGING_RUNNING
    if bare in ENDED_STATES:
        return JobState.FAILED
    return None


COLLECT_NO_RESULTS = "collect step produced no results"


def _job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"not a SLURM job id: {job_id!r}")
    return job_id


def _job_ids(job_ids: Iterable[str]) -> list[str]:
    ids = [_job_id(job_id) for job_id in job_ids]
    if not ids:
        raise ValueError("no job ids given")
    return ids
