"""The SLURM client library against a real single-node SLURM, reached over a real sshd.

tests/support/slurm.py starts munged, slurmctld, slurmd and a private sshd (scripts/ensure-slurm
installs them). Nothing here is skipped: without SLURM the module's fixture fails with the
reason.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest
from support.slurm import LocalCluster, local_cluster

from cyclotron.domain.states import TaskState
from cyclotron.executors.slurm.commands import (
    ARRAY_TASK_ID,
    ENDED_STATES,
    JobKey,
    array_script,
    batch_options,
    collect_script,
    parse_sbatch,
    parse_squeue,
    sbatch_command,
    scancel_command,
    squeue_command,
    task_effect,
    task_log_paths,
)
from cyclotron.executors.slurm.remote import (
    MAX_OUTPUT,
    LocalRemote,
    Remote,
    RemoteError,
    RemoteTimeout,
    SshRemote,
)

pytestmark = pytest.mark.slurm

# Upper bounds so that a broken cluster fails the test instead of hanging it; never asserted.
PATIENCE = 60.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with local_cluster(tmp_path_factory.mktemp("slurm-cluster")) as running:
        yield running


@pytest.fixture
def ssh(cluster: LocalCluster) -> Iterator[SshRemote]:
    with SshRemote(cluster.ssh_target()) as remote:
        yield remote


@pytest.fixture
def job_dir(cluster: LocalCluster, ssh: SshRemote) -> Iterator[str]:
    """A fresh directory in the test user's home, removed afterwards."""
    path = f"{cluster.home}/cyclotron-tests/{uuid.uuid4().hex[:12]}"
    yield path
    ssh.remove_tree(path)


@pytest.fixture
def probe(cluster: LocalCluster, ssh: SshRemote) -> Iterator[str]:
    """A file path in the test user's home, removed afterwards."""
    path = f"{cluster.home}/.cyclotron-probe-{uuid.uuid4().hex[:12]}"
    yield path
    ssh.run(f"rm -f {path}", timeout=10).check("rm")


def wait_for_end(remote: Remote, job_ids: list[str], expected: set[JobKey]) -> dict[JobKey, str]:
    """Poll with one squeue call per round until every expected job or task has ended."""
    deadline = time.monotonic() + PATIENCE
    while True:
        result = remote.run(squeue_command(job_ids), timeout=30)
        states = parse_squeue(result.stdout, exit_status=result.exit_status, stderr=result.stderr)
        if expected <= states.keys() and all(states[key] in ENDED_STATES for key in expected):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs did not end: {states}")
        time.sleep(0.5)


# --- batch jobs -------------------------------------------------------------------------------


def test_array_and_dependent_collect_job_run_over_ssh(
    ssh: SshRemote, job_dir: str, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "input").mkdir(parents=True)
    (inputs / "input" / "seed.txt").write_text("seed-42\n")
    ssh.put_tree(inputs, job_dir)
    options = batch_options({"array_options": {"time": "00:05:00"}, "collect_options": {"t": 5}})
    # Each task runs the test suite's own Python (the .venv) as the cluster user.
    write_output = (
        "import sys, cyclotron; seed = open('input/seed.txt').read().strip(); "
        "open(f'out_{sys.argv[1]}.txt', 'w').write(f'{seed} task {sys.argv[1]}\\n')"
    )
    array = array_script(job_dir, 3, options, [[sys.executable, "-c", write_output, ARRAY_TASK_ID]])
    collect = collect_script(
        job_dir,
        options,
        [["sh", "-c", "cat out_1.txt out_2.txt out_3.txt > collected.txt"], ["echo", "merged"]],
    )
    ssh.write_file(f"{job_dir}/array.sh", array.encode(), 0o644)
    ssh.write_file(f"{job_dir}/collect.sh", collect.encode(), 0o644)

    array_id = parse_sbatch(
        ssh.run(sbatch_command(f"{job_dir}/array.sh"), timeout=30).check("sbatch").stdout
    )
    collect_id = parse_sbatch(
        ssh.run(sbatch_command(f"{job_dir}/collect.sh", dependency=array_id), timeout=30)
        .check("sbatch")
        .stdout
    )

    expected: set[JobKey] = {(array_id, 1), (array_id, 2), (array_id, 3), (collect_id, None)}
    states = wait_for_end(ssh, [array_id, collect_id], expected)

    assert {key: states[key] for key in expected} == dict.fromkeys(expected, "COMPLETED")
    assert {task_effect(states[key]).target for key in expected} == {TaskState.COMPLETED}
    assert ssh.read_file(f"{job_dir}/collected.txt").decode() == (
        "seed-42 task 1\nseed-42 task 2\nseed-42 task 3\n"
    )
    assert ssh.read_file(f"{job_dir}/collect.out") == b"merged\n"
    for index in (1, 2, 3):
        out, err = task_log_paths(job_dir, index)
        assert ssh.read_file(out) == b""
        assert ssh.read_file(err) == b""


def test_a_failing_task_fails_alone_and_the_collect_step_still_runs(
    ssh: SshRemote, job_dir: str, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    ssh.put_tree(tmp_path / "empty", job_dir)
    options = batch_options({"array_options": {"time": "00:05:00"}})
    fail_second = 'echo "task $1"; if [ "$1" = 2 ]; then echo broken >&2; exit 3; fi'
    array = array_script(job_dir, 2, options, [["sh", "-c", fail_second, "sh", ARRAY_TASK_ID]])
    ssh.write_file(f"{job_dir}/array.sh", array.encode())
    ssh.write_file(f"{job_dir}/collect.sh", collect_script(job_dir, options, [["true"]]).encode())
    array_id = parse_sbatch(ssh.run(sbatch_command(f"{job_dir}/array.sh"), timeout=30).stdout)
    collect_id = parse_sbatch(
        ssh.run(sbatch_command(f"{job_dir}/collect.sh", array_id), timeout=30).stdout
    )

    states = wait_for_end(
        ssh, [array_id, collect_id], {(array_id, 1), (array_id, 2), (collect_id, None)}
    )

    assert states[(array_id, 1)] == "COMPLETED"
    assert states[(array_id, 2)] == "FAILED"
    assert task_effect(states[(array_id, 2)]).note == "SLURM state FAILED"
    assert states[(collect_id, None)] == "COMPLETED"  # afterany: the merge runs regardless
    out, err = task_log_paths(job_dir, 2)
    assert ssh.read_file(out) == b"task 2\n"
    assert ssh.read_file(err) == b"broken\n"


def test_scancel_ends_a_sleeping_array_within_seconds(ssh: SshRemote, job_dir: str) -> None:
    ssh.run(f"mkdir -p {job_dir}", timeout=30).check("mkdir")
    options = batch_options({"array_options": {"time": "00:05:00"}})
    ssh.write_file(
        f"{job_dir}/array.sh", array_script(job_dir, 3, options, [["sleep", "300"]]).encode()
    )
    array_id = parse_sbatch(ssh.run(sbatch_command(f"{job_dir}/array.sh"), timeout=30).stdout)
    deadline = time.monotonic() + PATIENCE
    while (
        "RUNNING"
        not in parse_squeue(ssh.run(squeue_command([array_id]), timeout=30).stdout).values()
    ):
        assert time.monotonic() < deadline, "the array never started"
        time.sleep(0.3)

    cancelled_at = time.monotonic()
    ssh.run(scancel_command([array_id]), timeout=30).check("scancel")
    states = wait_for_end(ssh, [array_id], {(array_id, 1), (array_id, 2), (array_id, 3)})
    took = time.monotonic() - cancelled_at

    assert set(states.values()) == {"CANCELLED"}
    assert task_effect(states[(array_id, 1)]).target is TaskState.FAILED
    assert task_effect(states[(array_id, 1)]).note == "cancelled on the cluster"
    assert took < 15, f"the cancelled array took {took:.1f} s to leave the active states"


def test_local_remote_submits_to_a_slurm_installed_here(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    local = LocalRemote(tmp_path)
    options = batch_options({"array_options": {"time": "00:05:00"}})
    local.write_file(
        "job/array.sh", array_script(str(job_dir), 1, options, [["touch", "done"]]).encode()
    )
    array_id = parse_sbatch(
        local.run(sbatch_command(f"{job_dir}/array.sh"), timeout=30).check("sbatch").stdout
    )

    states = wait_for_end(local, [array_id], {(array_id, 1)})

    assert states[(array_id, 1)] == "COMPLETED"
    assert (job_dir / "done").exists()


# --- the SSH connection -----------------------------------------------------------------------


def test_one_connection_serves_twenty_commands(cluster: LocalCluster, ssh: SshRemote) -> None:
    before = cluster.accepted_connections()
    transports = set()
    for number in range(20):
        assert ssh.run(f"echo {number}", timeout=10).stdout == f"{number}\n"
        transports.add(id(ssh.transport))

    assert len(transports) == 1
    assert ssh.connections == 1
    assert cluster.accepted_connections() - before == 1


def test_commands_from_many_threads_share_the_connection(
    cluster: LocalCluster, ssh: SshRemote
) -> None:
    before = cluster.accepted_connections()
    with ThreadPoolExecutor(max_workers=6) as pool:
        outputs = list(
            pool.map(lambda n: ssh.run(f"sleep 0.2; echo {n}", timeout=30).stdout, range(24))
        )

    assert outputs == [f"{n}\n" for n in range(24)]
    assert ssh.connections == 1
    assert cluster.accepted_connections() - before == 1


def test_a_dead_connection_is_reopened_once(ssh: SshRemote, probe: str) -> None:
    assert ssh.run("true", timeout=10).ok
    transport = ssh.transport
    assert transport is not None
    transport.close()

    assert ssh.run("echo again", timeout=10).stdout == "again\n"
    assert ssh.transport is not transport
    assert ssh.connections == 2
    ssh.write_file(probe, b"x")  # SFTP follows the new connection
    assert ssh.read_file(probe) == b"x"


def test_file_transfers_reopen_a_dead_connection_once(ssh: SshRemote, probe: str) -> None:
    ssh.write_file(probe, b"1")
    transport = ssh.transport
    assert transport is not None
    transport.close()

    ssh.write_file(probe, b"2")

    assert ssh.read_file(probe) == b"2"
    assert ssh.connections == 2
    assert ssh.run(f"cat {probe}", timeout=10).stdout == "2"


def test_a_pinned_host_key_is_enough_and_a_wrong_one_is_refused(cluster: LocalCluster) -> None:
    pinned = replace(cluster.ssh_target(), known_hosts_path=None, host_key=cluster.host_key)
    with SshRemote(pinned) as remote:
        assert remote.run("whoami", timeout=10).stdout == f"{cluster.username}\n"

    other_key = Path(f"{cluster.key_path}.pub").read_text().split()
    wrong = replace(pinned, host_key=f"{other_key[0]} {other_key[1]}")
    with SshRemote(wrong) as remote, pytest.raises(RemoteError, match="does not match"):
        remote.run("true", timeout=10)


def test_an_unknown_host_is_refused_unless_explicitly_accepted(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    unknown = replace(cluster.ssh_target(), known_hosts_path=empty)
    with SshRemote(unknown) as remote, pytest.raises(RemoteError, match="not found in known_hosts"):
        remote.run("true", timeout=10)
    with SshRemote(replace(unknown, accept_unknown_host=True)) as remote:
        assert remote.run("true", timeout=10).ok
    with pytest.raises(ValueError, match="accept_unknown_host"):
        SshRemote(replace(unknown, known_hosts_path=None))


def test_a_key_the_server_does_not_know_is_refused_without_showing_it(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    key_file = tmp_path / "stranger"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(key_file))
    target = replace(cluster.ssh_target(), key_path=key_file)
    with SshRemote(target) as remote, pytest.raises(RemoteError) as caught:
        remote.run("true", timeout=10)

    assert str(caught.value) == (
        f"ssh to {cluster.username}@127.0.0.1:{cluster.ssh_port}: the key was not accepted"
    )


def test_a_certificate_signed_by_a_trusted_ca_logs_in(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    key = tmp_path / "id_cert_user"
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)]
    subprocess.run(keygen, check=True, timeout=30)
    without = replace(cluster.ssh_target(), key_path=key)
    with SshRemote(without) as remote, pytest.raises(RemoteError, match="not accepted"):
        remote.run("true", timeout=10)

    sign = ["ssh-keygen", "-q", "-s", str(cluster.user_ca_path), "-I", "test", "-V", "+1h"]
    subprocess.run([*sign, "-n", cluster.username, f"{key}.pub"], check=True, timeout=30)
    certificate = Path(f"{key}-cert.pub").read_text()
    with SshRemote(replace(without, certificate=certificate)) as remote:
        assert remote.run("whoami", timeout=10).stdout == f"{cluster.username}\n"
    assert certificate.split()[1] not in repr(replace(without, certificate=certificate))


def test_private_key_text_works_and_never_reaches_logs_or_reprs(
    cluster: LocalCluster, probe: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = cluster.key_path.read_text()
    target = replace(cluster.ssh_target(), key_path=None, private_key=text)
    caplog.set_level(logging.DEBUG)
    with SshRemote(target) as remote:
        assert remote.run("echo hi", timeout=10).stdout == "hi\n"
        remote.write_file(probe, b"y")

    body = [line for line in text.splitlines() if not line.startswith("-----")]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "ssh connection 1" in logged
    assert not any(line in logged or line in repr(target) for line in body)


# --- commands and files, on both remotes ------------------------------------------------------


@pytest.fixture(params=["ssh", "local"])
def place(
    request: pytest.FixtureRequest, cluster: LocalCluster, tmp_path: Path
) -> Iterator[tuple[Remote, str]]:
    """A remote and an empty directory on it."""
    if request.param == "ssh":
        remote: Remote = SshRemote(cluster.ssh_target())
        base = f"{cluster.home}/cyclotron-tests/{uuid.uuid4().hex[:12]}"
    else:
        remote = LocalRemote(tmp_path)
        base = str(tmp_path / "remote")
    with remote:
        remote.run(f"mkdir -p {base}", timeout=10).check("mkdir")
        yield remote, base
        remote.remove_tree(base)


def test_run_reports_exit_status_output_and_takes_stdin(place: tuple[Remote, str]) -> None:
    remote, _ = place
    result = remote.run("cat; echo err >&2; exit 7", stdin=b"from stdin\n", timeout=10)
    assert (result.exit_status, result.stdout, result.stderr) == (7, "from stdin\n", "err\n")
    assert not result.ok
    with pytest.raises(RemoteError, match="^cat failed with exit status 7: err$"):
        result.check("cat")


def test_run_stops_at_its_timeout_and_the_remote_stays_usable(place: tuple[Remote, str]) -> None:
    remote, _ = place
    started = time.monotonic()
    with pytest.raises(RemoteTimeout, match="sleep"):
        remote.run("sleep 30", timeout=0.5)
    assert time.monotonic() - started < 5
    assert remote.run("echo still here", timeout=10).stdout == "still here\n"


def test_run_keeps_a_bounded_share_of_huge_output(place: tuple[Remote, str]) -> None:
    remote, _ = place
    result = remote.run("head -c 3000000 /dev/zero | tr '\\0' a; echo done >&2", timeout=60)
    assert result.truncated
    assert result.stdout == "a" * MAX_OUTPUT
    assert result.stderr == "done\n"


def test_put_tree_copies_files_directories_and_modes(
    place: tuple[Remote, str], tmp_path: Path
) -> None:
    remote, base = place
    source = tmp_path / "source"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "empty").mkdir()
    (source / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (source / "run.sh").chmod(0o755)
    (source / "sub" / "deeper" / "data.bin").write_bytes(bytes(range(256)) * 100)
    (source / "link.txt").symlink_to(source / "run.sh")

    remote.put_tree(source, f"{base}/job")
    remote.put_tree(source, f"{base}/job")  # again: files are replaced, directories kept

    assert remote.run(f"cd {base}/job && ./run.sh", timeout=10).stdout == "ran\n"
    listing = remote.run(f"cd {base}/job && find . | sort", timeout=10).stdout.split()
    assert listing == [
        ".",
        "./empty",
        "./link.txt",
        "./run.sh",
        "./sub",
        "./sub/deeper",
        "./sub/deeper/data.bin",
    ]
    assert remote.read_file(f"{base}/job/sub/deeper/data.bin") == bytes(range(256)) * 100
    assert remote.read_file(f"{base}/job/link.txt") == (source / "run.sh").read_bytes()


def test_write_file_sets_the_mode_and_read_file_is_bounded(place: tuple[Remote, str]) -> None:
    remote, base = place
    remote.write_file(f"{base}/secret.env", b"TOKEN=x\n", 0o600)
    remote.write_file(f"{base}/secret.env", b"TOKEN=y\n", 0o600)
    assert remote.run(f"stat -c %a {base}/secret.env", timeout=10).stdout == "600\n"
    assert remote.read_file(f"{base}/secret.env") == b"TOKEN=y\n"
    with pytest.raises(RemoteError, match="more than the 4 bytes"):
        remote.read_file(f"{base}/secret.env", max_bytes=4)
    with pytest.raises(FileNotFoundError):
        remote.read_file(f"{base}/missing")


def test_remove_tree_removes_and_refuses_dangerous_paths(place: tuple[Remote, str]) -> None:
    remote, base = place
    remote.run(f"mkdir -p {base}/gone/a && touch {base}/gone/a/f", timeout=10).check("mkdir")
    remote.remove_tree(f"{base}/gone")
    remote.remove_tree(f"{base}/gone")  # absent: nothing happens
    assert remote.run(f"test -e {base}/gone", timeout=10).exit_status == 1
    for path in ("", "/", "..", f"{base}/../x", "."):
        with pytest.raises(ValueError, match="refusing"):
            remote.remove_tree(path)


def test_a_closed_ssh_remote_refuses_work(cluster: LocalCluster) -> None:
    remote = SshRemote(cluster.ssh_target())
    remote.close()
    with pytest.raises(RemoteError, match="closed"):
        remote.run("true", timeout=10)
    with pytest.raises(RemoteError, match="closed"):
        remote.write_file("x", b"")
