"""The ``slurm`` executor over a scripted cluster host: what it sends, and what it reports.

The host is a stand-in :class:`Remote` that records commands and files and answers with
canned SLURM output (the formats of tests/unit/executors/test_slurm_commands.py); the real
cluster is exercised by tests/integration/test_slurm_batch.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cyclotron.domain.batches import BatchHandle, ClusterAccess, JobBatch
from cyclotron.domain.ports import TaskCommand, TaskRun
from cyclotron.domain.states import JobState, TaskState
from cyclotron.errors import ServiceUnavailable
from cyclotron.executors.slurm.executor import SlurmCluster, SlurmExecutor
from cyclotron.executors.slurm.remote import CommandResult, Remote
from cyclotron.plugins import executor_class
from cyclotron.settings import Settings, load_settings

WORK_DIR = "/cluster/jobs"
CLUSTER = ClusterAccess("hpc", {"host": "login.example", "user": "u", "work_dir": WORK_DIR})


class ScriptedHost(Remote):
    """Answers each program with the next canned result; records everything it is asked."""

    def __init__(self, answers: dict[str, list[CommandResult]]) -> None:
        self.answers = answers
        self.commands: list[str] = []
        self.files: dict[str, tuple[bytes, int]] = {}
        self.trees: list[tuple[Path, str]] = []
        self.removed: list[str] = []
        self.closed = False

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        self.commands.append(command)
        queue = self.answers.get(command.split(" ", 1)[0], [])
        return queue.pop(0) if queue else CommandResult(0, "", "")

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.files[path] = (data, mode)

    def read_file(self, path: str, *, max_bytes: int = 1 << 20) -> bytes:
        return self.files[path][0]

    def put_tree(self, local_dir: Path, remote_dir: str) -> None:
        self.trees.append((local_dir, remote_dir))

    def remove_tree(self, remote_dir: str) -> None:
        self.removed.append(remote_dir)

    def close(self) -> None:
        self.closed = True


class CountingReporter:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def command_sent(self, cluster: str, program: str) -> None:
        self.sent.append((cluster, program))


def _settings(tmp_path: Path, **slurm: object) -> Settings:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return load_settings(empty, environ={}, overrides={"executors": {"slurm": slurm}})


def _executor(
    tmp_path: Path, host: ScriptedHost, **slurm: object
) -> tuple[SlurmExecutor, CountingReporter, list[SlurmCluster]]:
    connected: list[SlurmCluster] = []

    def connect(cluster: SlurmCluster) -> Remote:
        connected.append(cluster)
        return host

    executor = SlurmExecutor(_settings(tmp_path, **slurm), connect=connect)
    reporter = CountingReporter()
    executor.start_jobs(reporter)
    return executor, reporter, connected


def _batch(tmp_path: Path, **changes: Any) -> JobBatch:
    batch = JobBatch(
        job_id="0123456789abcdef",
        report_id="20240101-000000-abcBATCH",
        cluster=CLUSTER,
        input_dir=tmp_path,
        ntasks=2,
        seeds=(11, 12),
        service="builtin",
        plugin="builtin",
        plugin_options={"limit": 3},
        update_key="the-update-key",
        options=SlurmExecutor.job_options({"array_options": {"partition": "debug"}}),
        api_url="http://server:8000/",
    )
    return replace(batch, **changes)


def _ok(stdout: str) -> CommandResult:
    return CommandResult(0, stdout, "")


def test_it_is_the_slurm_entry_point_and_takes_no_single_tasks(tmp_path: Path) -> None:
    assert executor_class("slurm") is SlurmExecutor
    executor = SlurmExecutor(_settings(tmp_path))
    assert executor.runs_whole_jobs
    assert executor.free_slots() == 0
    assert executor.running() == 0
    run = TaskRun(
        "job", "builtin", 0, 1, tmp_path, tmp_path / "out", tmp_path / "err",
        TaskCommand(("true",)), None,
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="whole jobs"):
        executor.submit(run, lambda line: None)


def test_submit_job_uploads_the_job_and_sends_an_array_and_a_dependent_collect(
    tmp_path: Path,
) -> None:
    host = ScriptedHost({"sbatch": [_ok("101\n"), _ok("102;cyclotron\n")]})
    executor, reporter, connected = _executor(tmp_path, host)
    submission = executor.submit_job(_batch(tmp_path))
    job_dir = f"{WORK_DIR}/20240101-000000-abcBATCH"
    assert submission.error is None
    assert submission.handle == BatchHandle("hpc", job_dir, "101", "102")
    assert [t.splitlines()[0] for t in submission.transcript] == [
        "$ sbatch array.sh",
        "$ sbatch collect.sh",
    ]
    assert host.trees == [(tmp_path, f"{job_dir}/input")]
    spec = json.loads(host.files[f"{job_dir}/job.json"][0])
    assert spec == {
        "job_id": "20240101-000000-abcBATCH",
        "api_url": "http://server:8000",
        "service": "builtin",
        "plugin": "builtin",
        "options": {"limit": 3},
        "ntasks": 2,
        "seeds": [11, 12],
    }
    assert host.files[f"{job_dir}/.update-key"] == (b"the-update-key", 0o600)
    array = host.files[f"{job_dir}/array.sh"][0].decode()
    assert "#SBATCH --array=1-2" in array and "#SBATCH --partition=debug" in array
    assert "--dependency=afterany:101" in host.commands[-1]
    assert reporter.sent == [("hpc", "sbatch"), ("hpc", "sbatch")]  # mkdir is not counted
    assert [c.name for c in connected] == ["hpc"]


def test_a_cluster_api_url_wins_over_the_servers_own(tmp_path: Path) -> None:
    host = ScriptedHost({"sbatch": [_ok("1\n"), _ok("2\n")]})
    executor, _, _ = _executor(tmp_path, host)
    cluster = ClusterAccess("hpc", {**CLUSTER.options, "api_url": "https://public/x/"})
    submission = executor.submit_job(_batch(tmp_path, cluster=cluster))
    assert submission.handle is not None
    spec = json.loads(host.files[f"{submission.handle.job_dir}/job.json"][0])
    assert spec["api_url"] == "https://public/x"


def test_a_refused_submission_is_returned_with_what_sbatch_said(tmp_path: Path) -> None:
    refused = CommandResult(1, "", "sbatch: error: invalid partition specified: nope")
    host = ScriptedHost({"sbatch": [refused]})
    executor, _, _ = _executor(tmp_path, host)
    submission = executor.submit_job(_batch(tmp_path))
    assert submission.handle is None
    assert submission.error is not None and "invalid partition" in submission.error
    assert "invalid partition" in submission.transcript[0]


def test_a_cluster_without_a_work_dir_is_a_failed_submission(tmp_path: Path) -> None:
    executor, _, connected = _executor(tmp_path, ScriptedHost({}))
    submission = executor.submit_job(_batch(tmp_path, cluster=ClusterAccess("hpc", {})))
    assert submission.handle is None
    assert submission.error == "cluster 'hpc' has no absolute work_dir configured"
    assert connected == []


def test_poll_jobs_asks_once_for_every_job_and_reports_what_it_saw(tmp_path: Path) -> None:
    squeue = "101|1|COMPLETED\n101|2|FAILED\n102|N/A|PENDING\n201|1|RUNNING\n202|N/A|PENDING\n"
    host = ScriptedHost({"squeue": [_ok(squeue)]})
    executor, reporter, _ = _executor(tmp_path, host)
    first, second = BatchHandle("hpc", "/a", "101", "102"), BatchHandle("hpc", "/b", "201", "202")
    seen = executor.poll_jobs(CLUSTER, [first, second])
    assert reporter.sent == [("hpc", "squeue")]
    assert "--jobs=101,102,201,202" in host.commands[0]
    tasks = seen[first].tasks
    assert {i: t.target for i, t in tasks.items()} == {
        0: TaskState.COMPLETED,
        1: TaskState.FAILED,
    }
    assert tasks[1].note == "SLURM state FAILED"
    collect = seen[first].collect
    assert collect is not None and collect.target == JobState.MERGING_QUEUED
    assert {i: t.target for i, t in seen[second].tasks.items()} == {0: TaskState.RUNNING}


def test_an_ended_collect_step_explains_itself(tmp_path: Path) -> None:
    host = ScriptedHost({"squeue": [_ok("101|1|COMPLETED\n102|N/A|COMPLETED\n")]})
    executor, _, _ = _executor(tmp_path, host)
    handle = BatchHandle("hpc", "/a", "101", "102")
    collect = executor.poll_jobs(CLUSTER, [handle])[handle].collect
    assert collect is not None and collect.target == JobState.FAILED
    assert collect.note == "collect step produced no results (COMPLETED)"


def test_jobs_the_cluster_forgot_are_seen_as_nothing(tmp_path: Path) -> None:
    forgot = CommandResult(1, "", "slurm_load_jobs error: Invalid job id specified")
    executor, _, _ = _executor(tmp_path, ScriptedHost({"squeue": [forgot]}))
    handle = BatchHandle("hpc", "/a", "101", "102")
    seen = executor.poll_jobs(CLUSTER, [handle])[handle]
    assert seen.tasks == {} and seen.collect is None


@pytest.mark.parametrize(
    "answer",
    [
        CommandResult(1, "", "squeue: error: Unable to contact slurm controller"),
        CommandResult(0, "what is this\n", ""),
    ],
)
def test_an_unreadable_squeue_is_a_cluster_unavailable(
    tmp_path: Path, answer: CommandResult
) -> None:
    executor, _, _ = _executor(tmp_path, ScriptedHost({"squeue": [answer]}))
    with pytest.raises(ServiceUnavailable):
        executor.poll_jobs(CLUSTER, [BatchHandle("hpc", "/a", "101", "102")])


@pytest.mark.parametrize(("keep", "removed"), [(False, ["/cluster/jobs/x"]), (True, [])])
def test_cancel_job_scancels_both_jobs_and_removes_the_directory_unless_kept(
    tmp_path: Path, keep: bool, removed: list[str]
) -> None:
    host = ScriptedHost({})
    executor, reporter, _ = _executor(tmp_path, host, keep_job_dir=keep)
    executor.cancel_job(CLUSTER, BatchHandle("hpc", "/cluster/jobs/x", "101", "102"))
    assert host.commands == ["scancel 101 102"]
    assert reporter.sent == [("hpc", "scancel")]
    assert host.removed == removed


def test_a_failed_scancel_raises_for_the_caller_to_retry(tmp_path: Path) -> None:
    refused = CommandResult(1, "", "scancel: error: Unable to contact slurm controller")
    executor, _, _ = _executor(tmp_path, ScriptedHost({"scancel": [refused]}))
    with pytest.raises(ServiceUnavailable):
        executor.cancel_job(CLUSTER, BatchHandle("hpc", "/cluster/jobs/x", "101", "102"))


def test_one_connection_per_cluster_until_stopped(tmp_path: Path) -> None:
    host = ScriptedHost({})
    executor, _, connected = _executor(tmp_path, host)
    handle = BatchHandle("hpc", "", "101", "102")
    for _ in range(3):
        executor.cancel_job(CLUSTER, handle)
    assert len(connected) == 1
    executor.stop()
    assert host.closed
    executor.cancel_job(CLUSTER, handle)
    assert len(connected) == 2


def test_options_are_checked_and_kept_as_plain_data() -> None:
    kept = SlurmExecutor.job_options({"slurm_options": {"time": "1:00:00"}, "collect_header": ""})
    assert kept == {
        "array_options": {"time": "1:00:00"},
        "array_header": [],
        "collect_options": {},
        "collect_header": [],
    }
    assert json.loads(json.dumps(kept)) == kept
