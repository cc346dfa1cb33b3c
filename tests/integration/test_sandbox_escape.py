"""A task that tries to break out of its sandbox, against a live server (SQLite in its data
directory, authentication on, tasks submitted by a user who is no admin).

Each ``run.sh`` tries one escape and writes what it saw into ``out.txt``; the test reads it
through the API and checks what a user would notice: the job's end and error, the server's
database and files unchanged, the server still answering, and no process left behind. The
server's environment holds its admin key (``CYCLOTRON_API_KEY``), the canary no task may find.

``jail`` has small limits; ``example`` has the defaults. The last two cases run the task on a
``cyclotron worker`` over Redis.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conformance.native.native_support import create, poll
from support.live import LiveServer
from support.workers import Worker, broker

MiB = 1024 * 1024
QUOTA = 1 * MiB
MAX_PROCESSES = 64
SLOTS = 6
# Task uids of their own, so that no other server's tasks on this host are counted (or share
# the per-uid process limit).
TASK_UID_BASE = 3_100_000
PYTHON = sys.executable  # the server's Python: readable inside every sandbox
# The servers run as this test does; a root server runs each task slot under a uid of its own.
AS_ROOT = os.geteuid() == 0
JAIL = {
    "plugin": "script",
    "executor": "local",
    "max_processes": MAX_PROCESSES,
    "memory_limit": "256MiB",
    "output_quota": "1MiB",
    "cpu_time_limit": 2,
    "time_limit": 60,
    "max_runs": 20,
    "runs_per_user": 20,
}
EXAMPLE = {"plugin": "script", "executor": "local", "max_runs": 20, "runs_per_user": 20}
SETTLE_SECONDS = 15.0  # how long a process killed with its sandbox may take to disappear


@dataclass(frozen=True)
class Keys:
    admin: str  # CYCLOTRON_API_KEY: also the canary of the server's environment
    user: str  # user 1, who submits the escapes
    other: str  # user 2


@dataclass(frozen=True)
class Jail:
    server: LiveServer
    keys: Keys

    @property
    def database(self) -> Path:
        return self.server.data_dir / "cyclotron.db"

    @property
    def pid(self) -> int:
        assert self.server.process is not None
        return self.server.process.pid

    def client(self, key: str) -> httpx.Client:
        return self.server.client(headers={"Authorization": f"Bearer {key}"})


@dataclass(frozen=True)
class Ended:
    id: str
    detail: dict[str, Any]
    out: str  # the task's out.txt, as the files route serves it

    @property
    def status(self) -> str:
        return str(self.detail["status"])

    @property
    def error(self) -> str:
        return str(self.detail["error_message"] or "")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _keys() -> Keys:
    return Keys(*(f"cyc_{secrets.token_urlsafe(24)}" for _ in range(3)))


def _config(keys: Keys, data_dir: Path, services: Mapping[str, Any]) -> dict[str, Any]:
    return {
        # SQLite in the data directory, as a server configured with no database has it.
        "server": {"data_dir": str(data_dir), "database_url": f"sqlite:///{data_dir}/cyclotron.db"},
        "auth": {
            "enabled": True,
            "keys": [
                {"sha256": _digest(keys.user), "user_id": 1},
                {"sha256": _digest(keys.other), "user_id": 2},
            ],
        },
        "sandbox": {"task_uid_base": TASK_UID_BASE},
        "dispatch": {"interval": 0.2},
        "executors": {"local": {"max_parallel": SLOTS, "grace_period": 2}},
        "services": dict(services),
    }


@pytest.fixture(scope="module")
def jail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jail]:
    workdir = tmp_path_factory.mktemp("escape")
    keys = _keys()
    config = _config(keys, workdir / "data", {"example": EXAMPLE, "jail": JAIL})
    server = LiveServer(workdir, "unused", config, {"CYCLOTRON_API_KEY": keys.admin}).start()
    try:
        with server.client(headers={"Authorization": f"Bearer {keys.admin}"}) as admin:
            sandbox = admin.get("/api/system/status").json()["sandbox"]
        assert sandbox == {"mode": "bwrap", "configured": "bwrap", "reason": None}, sandbox
        yield Jail(server, keys)
    finally:
        server.stop()


@pytest.fixture
def user(jail: Jail) -> Iterator[httpx.Client]:
    with jail.client(jail.keys.user) as client:
        yield client


def fill(script: str, **values: object) -> str:
    """``script`` with each ``@NAME@`` replaced by its value."""
    for name, value in values.items():
        script = script.replace(f"@{name}@", str(value))
    assert re.search(r"@[A-Z]+@", script) is None, script
    return script


def out_of(client: httpx.Client, job_id: str) -> str:
    response = client.get(f"/api/jobs/{job_id}/files/tasks/0/out.txt")
    return response.text if response.status_code == 200 else ""


def run_jobs(
    client: httpx.Client, scripts: Mapping[str, tuple[str, str]], timeout: float = 90.0
) -> dict[str, Ended]:
    """Submit each (service, run.sh) at once, then wait for every one to end."""
    ids = {
        name: create(
            client,
            {
                "name": name,
                "service": service,
                "ntasks": 1,
                "input": {"kind": "files", "files": {"run.sh": script}},
            },
        )
        for name, (service, script) in scripts.items()
    }
    ended = {}
    for name, job_id in ids.items():
        detail = poll(client, job_id, timeout=timeout)
        ended[name] = Ended(job_id, detail, out_of(client, job_id))
    return ended


def in_both(script: str) -> dict[str, tuple[str, str]]:
    """The same escape under the small limits and under the defaults."""
    return {"jail": ("jail", script), "example": ("example", script)}


def _processes(match: Callable[[int, bytes], bool]) -> list[str]:
    """This host's processes whose (uid, command line) ``match``, described."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", "rb") as handle:
                uid = int(next(line for line in handle if line.startswith(b"Uid:")).split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ")
        except (OSError, StopIteration):
            continue
        if match(uid, cmdline):
            found.append(f"{entry} (uid {uid}): {cmdline.decode(errors='replace')}")
    return found


def task_processes(marker: str | None = None) -> list[str]:
    """Processes of this host run by a task uid, or whose command line holds ``marker``."""
    uids = range(TASK_UID_BASE, TASK_UID_BASE + SLOTS + 1)
    wanted = marker.encode() if marker is not None else b"\0"  # NUL: in no command line
    return _processes(lambda uid, cmdline: uid in uids or wanted in cmdline)


def survivors(marker: str | None = None) -> list[str]:
    """What still runs of the tasks once their sandboxes had time to go (empty: none)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (found := task_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def task_dir(jail: Jail, job_id: str) -> Path:
    return jail.server.data_dir / "jobs" / job_id / "tasks" / "0"


def answers(jail: Jail) -> bool:
    """The server is alive and serves an authenticated request."""
    assert jail.server.process is not None
    if jail.server.process.poll() is not None:
        return False
    with jail.client(jail.keys.admin) as admin:
        return admin.get("/api/system/status").status_code == 200


def key_rows(database: Path) -> list[tuple[str, int, bool]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT sha256, user_id, admin FROM api_keys").fetchall()
    return [(str(r[0]), int(r[1]), bool(r[2])) for r in rows]


# 1 ------------------------------------------------------------------------------------------
REPRODUCER = """\
if cat @DB@ > stolen.db 2>/dev/null; then echo "read: yes"; else echo "read: no"; fi > out.txt
@PYTHON@ - >> out.txt 2>&1 <<'PY'
import sqlite3
try:
    db = sqlite3.connect("@DB@")
    db.execute(
        "INSERT INTO api_keys (sha256, user_id, admin, label, created_at) "
        "VALUES ('@DIGEST@', 0, 1, 'escape', CURRENT_TIMESTAMP)"
    )
    db.commit()
    print("insert: done")
except Exception as exc:
    print("insert: failed:", type(exc).__name__, exc)
PY
"""


def assert_reproducer_failed(ended: Ended, database: Path, planted: str) -> None:
    assert ended.status == "completed", ended.detail
    assert ended.out.startswith("read: no\ninsert: failed: OperationalError"), ended.out
    assert all(row[0] != _digest(planted) for row in key_rows(database))


def test_01_the_database_can_be_neither_read_nor_changed(jail: Jail, user: httpx.Client) -> None:
    planted = f"cyc_{secrets.token_urlsafe(24)}"
    rows_before = key_rows(jail.database)
    with jail.client(jail.keys.other) as other:
        theirs = create(
            other,
            {
                "name": "someone else's",
                "service": "example",
                "ntasks": 1,
                "input": {"kind": "files", "files": {"run.sh": "echo mine > out.txt\n"}},
            },
        )
        assert poll(other, theirs)["status"] == "completed"
    script = fill(REPRODUCER, DB=jail.database, PYTHON=PYTHON, DIGEST=_digest(planted))
    ended = run_jobs(user, in_both(script))

    for job in ended.values():
        assert_reproducer_failed(job, jail.database, planted)
        stolen = user.get(f"/api/jobs/{job.id}/files/tasks/0/stolen.db")
        assert stolen.status_code == 200 and stolen.content == b""
    assert key_rows(jail.database) == rows_before
    with jail.client(planted) as intruder:
        assert intruder.get("/api/jobs").status_code == 401
    # User 1 is still no admin: someone else's job is neither listed nor shown.
    listed = user.get("/api/jobs", params={"page_size": 100}).json()
    assert {job["user_id"] for job in listed["jobs"]} == {1}, listed
    assert theirs not in {job["id"] for job in listed["jobs"]}
    assert user.get(f"/api/jobs/{theirs}").status_code == 404


# 2 ------------------------------------------------------------------------------------------
SECRETS = """\
for path in @DATA@/secrets/signing-keys.json @CONFIG@; do
    echo "$path: $(cat "$path" 2>/dev/null | wc -c) bytes"
done > out.txt
echo "data: $(ls -A @DATA@ 2>&1 | tr '\\n' ' ')" >> out.txt
"""


def test_02_the_signing_keys_and_the_configuration_are_hidden(
    jail: Jail, user: httpx.Client
) -> None:
    data = jail.server.data_dir
    script = fill(SECRETS, DATA=data, CONFIG=jail.server.config_path)
    ended = run_jobs(user, in_both(script))

    signing = (data / "secrets" / "signing-keys.json").read_text()
    for job in ended.values():
        assert job.status == "completed", job.detail
        # Nothing to read (the configuration's path is /dev/null inside), and the data
        # directory is only the way to the task's own folder.
        assert job.out.splitlines() == [
            f"{data}/secrets/signing-keys.json: 0 bytes",
            f"{jail.server.config_path}: 0 bytes",
            "data: jobs ",
        ], job.out
        assert signing not in job.out and _digest(jail.keys.user) not in job.out


# 3 ------------------------------------------------------------------------------------------
VICTIM = """\
echo "@SECRET@" > secret.txt
for i in $(seq 600); do [ -e release ] && break; sleep 0.1; done
ls > out.txt
"""
INTRUDER = """\
A=@VICTIM@
if cat $A/secret.txt 2>/dev/null; then echo "read: yes"; else echo "read: no"; fi > out.txt
if echo intruder > $A/intruder.txt 2>/dev/null
then echo "write: yes"; else echo "write: no"; fi >> out.txt
if ls $A/.. >/dev/null 2>&1; then echo "list: yes"; else echo "list: no"; fi >> out.txt
if cat @INPUT@/run.sh 2>/dev/null; then echo "input: yes"; else echo "input: no"; fi >> out.txt
"""


def test_03_another_jobs_folder_can_be_neither_read_nor_written(
    jail: Jail, user: httpx.Client
) -> None:
    secret = uuid.uuid4().hex
    victim = create(
        user,
        {
            "name": "victim",
            "service": "jail",
            "ntasks": 1,
            "input": {"kind": "files", "files": {"run.sh": fill(VICTIM, SECRET=secret)}},
        },
    )
    victim_dir = task_dir(jail, victim)
    deadline = time.monotonic() + 60
    while not (victim_dir / "secret.txt").is_file():
        assert time.monotonic() < deadline, poll(user, victim, lambda _: True)
        time.sleep(0.1)
    script = fill(INTRUDER, VICTIM=victim_dir, INPUT=victim_dir.parent.parent / "input")
    with jail.client(jail.keys.other) as other:  # another user's job, as another task uid
        intruders = run_jobs(other, {"other user": ("example", script)})
    intruders |= run_jobs(user, {"same user": ("jail", script)})
    (victim_dir / "release").touch()
    detail = poll(user, victim)

    for job in intruders.values():
        assert job.status == "completed", job.detail
        assert job.out == "read: no\nwrite: no\nlist: no\ninput: no\n", job.out
        assert secret not in job.out
    assert detail["status"] == "completed", detail
    assert out_of(user, victim).split() == ["out.txt", "release", "run.sh", "secret.txt"]
    assert (victim_dir / "secret.txt").read_text() == f"{secret}\n"
    assert not (victim_dir / "intruder.txt").exists()


# 4 ------------------------------------------------------------------------------------------
WRITER = """\
for target in @TARGETS@; do
    if echo escaped > "$target" 2>/dev/null
    then echo "$target: written"; else echo "$target: refused"; fi
done > out.txt
if echo escaped > ../@MARKER@ 2>/dev/null
then echo "parent: written"; else echo "parent: refused"; fi >> out.txt
if echo escaped > /tmp/@MARKER@; then echo "tmp: written"; fi >> out.txt
"""


def test_04_nothing_outside_the_task_folder_is_written(jail: Jail, user: httpx.Client) -> None:
    marker = f"escape-{uuid.uuid4().hex}"
    site = next(p for p in sys.path if p.endswith("site-packages"))
    # Read-only in the sandbox, or not there at all.
    system = [
        "/usr",
        "/etc",
        "/opt",
        "/var/tmp",
        site,  # a .pth file here would run in the server's next start
        str(Path(__file__).resolve().parents[2] / "src"),
    ]
    # Folders on the way to the task's own: empty stand-ins in the sandbox (writable there
    # when a server not running as root gives the task a user namespace), never the host's.
    stand_ins = [
        "/dev/shm",
        str(jail.server.data_dir),
        str(jail.server.data_dir / "jobs"),
        str(jail.server.workdir),  # the server's own folder, where its configuration lies
    ]
    targets = [f"{folder}/{marker}" for folder in system + stand_ins]
    script = fill(WRITER, TARGETS=" ".join(targets), MARKER=marker)
    ended = run_jobs(user, in_both(script))

    for job in ended.values():
        assert job.status == "completed", job.detail
        seen = dict(line.rsplit(": ", 1) for line in job.out.splitlines())
        assert [seen[f"{folder}/{marker}"] for folder in system] == ["refused"] * len(system)
        assert seen["tmp"] == "written", job.out  # its own /tmp
        targets.append(str(task_dir(jail, job.id).parent / marker))
    targets.append(f"/tmp/{marker}")
    assert [target for target in targets if Path(target).exists()] == []


# 5 ------------------------------------------------------------------------------------------
CONNECT = """\
@PYTHON@ - > out.txt 2>&1 <<'PY'
import socket
for port in (5432, 6379, @PORT@):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        print(port, "connected")
    except OSError as exc:
        print(port, "refused")
for path in ("/run/postgresql/.s.PGSQL.5432", "/var/run/postgresql/.s.PGSQL.5432"):
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
        print(path, "connected")
    except OSError:
        print(path, "refused")
PY
"""


def test_05_no_connection_to_the_database_or_the_server(jail: Jail, user: httpx.Client) -> None:
    port = jail.server.port
    ended = run_jobs(user, in_both(fill(CONNECT, PYTHON=PYTHON, PORT=port)))

    for job in ended.values():
        assert job.status == "completed", job.detail
        assert job.out.splitlines() == [
            "5432 refused",
            "6379 refused",
            f"{port} refused",
            "/run/postgresql/.s.PGSQL.5432 refused",
            "/var/run/postgresql/.s.PGSQL.5432 refused",
        ], job.out


# 6 ------------------------------------------------------------------------------------------
ATTACK = """\
if kill -9 @PID@ 2>/dev/null; then echo "kill: sent"; else echo "kill: failed"; fi > out.txt
@PYTHON@ - >> out.txt 2>&1 <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_SEIZE = 0x4206  # as PTRACE_ATTACH, without stopping the tracee
for pid in (@PID@, 1):
    attached = libc.ptrace(PTRACE_SEIZE, pid, None, None) == 0
    print(f"ptrace {pid}:", "attached" if attached else "refused")
try:
    with open("/proc/@PID@/mem", "rb") as mem:
        mem.read(1)
    print("mem: read")
except OSError:
    print("mem: refused")
for entry in sorted(os.listdir("/proc")):
    if entry.isdigit():
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                print("sees:", handle.read().replace(b"\\0", b" ").decode(errors="replace"))
        except OSError:
            pass
PY
"""


def test_06_the_server_can_be_neither_killed_nor_traced(jail: Jail, user: httpx.Client) -> None:
    script = fill(ATTACK, PID=jail.pid, PYTHON=PYTHON)
    ended = run_jobs(user, in_both(script))

    for job in ended.values():
        assert job.status == "completed", job.detail
        lines = job.out.splitlines()
        assert lines[:4] == [
            "kill: failed",
            f"ptrace {jail.pid}: refused",
            lines[2],
            "mem: refused",
        ], job.out
        if AS_ROOT:  # the sandbox's init runs as root (otherwise as the task, without rights)
            assert lines[2] == "ptrace 1: refused", job.out
        # Its own processes only: the sandbox's init, run.sh and Python; never the server.
        seen = [line for line in lines[4:] if line.startswith("sees:")]
        assert seen and not [line for line in seen if "cyclotron serve" in line], job.out
    assert answers(jail)


# 7 ------------------------------------------------------------------------------------------
ENVIRON = """\
if cat /proc/@PID@/environ > /dev/null 2>&1
then echo "server: read"; else echo "server: refused"; fi > out.txt
for f in /proc/[0-9]*/environ; do echo "$f:"; tr '\\0' '\\n' < "$f"; done >> out.txt 2>&1
echo "own:" >> out.txt
env >> out.txt
"""


def test_07_the_servers_environment_is_out_of_reach(jail: Jail, user: httpx.Client) -> None:
    ended = run_jobs(user, in_both(fill(ENVIRON, PID=jail.pid)))

    for job in ended.values():
        assert job.status == "completed", job.detail
        assert job.out.startswith("server: refused\n"), job.out
        assert "own:" in job.out  # it did look everywhere it could
        assert jail.keys.admin not in job.out
        assert "CYCLOTRON_API_KEY" not in job.out


# 8 ------------------------------------------------------------------------------------------
FORK_CAP = 1000
FORK_BOMB = """\
@PYTHON@ - > out.txt 2>&1 <<'PY'
import os
children = 0
try:
    while children < @CAP@:
        if os.fork() == 0:
            try:
                os.execv("/bin/sleep", ["@MARKER@", "1000"])
            finally:
                os._exit(127)
        children += 1
    print("forks:", children, "no limit")
except OSError as exc:
    print("forks:", children, "then", exc.strerror)
PY
"""


def test_08_a_fork_bomb_meets_the_process_limit(jail: Jail, user: httpx.Client) -> None:
    marker = f"forkbomb-{uuid.uuid4().hex}"
    script = fill(FORK_BOMB, PYTHON=PYTHON, CAP=FORK_CAP, MARKER=marker)
    ended = run_jobs(user, in_both(script))

    assert survivors(marker) == []
    for name, limit in (("jail", MAX_PROCESSES), ("example", 256)):
        job = ended[name]
        assert job.status == "completed", job.detail
        assert job.out.startswith("forks: "), job.out
        if AS_ROOT:  # RLIMIT_NPROC counts per uid: only a uid per task slot makes it a limit
            assert 0 < int(job.out.split()[1]) < limit, job.out
            assert job.out.endswith("then Resource temporarily unavailable\n"), job.out
    # The host is fine: the next job runs.
    after = run_jobs(user, {"after": ("jail", "echo fine > out.txt\n")})["after"]
    assert (after.status, after.out) == ("completed", "fine\n")


# 9 ------------------------------------------------------------------------------------------
def test_09_memory_and_cpu_past_the_limits_fail_the_job(jail: Jail, user: httpx.Client) -> None:
    scripts = {
        "memory": f"{PYTHON} -c 'bytearray(512 * 1024 * 1024)'\n",
        "cpu": f"{PYTHON} -c 'while True: pass'\n",
    }
    ended = run_jobs(user, {name: ("jail", script) for name, script in scripts.items()})

    memory, cpu = ended["memory"], ended["cpu"]
    assert memory.status == "failed", memory.detail
    assert "MemoryError" in memory.error, memory.error
    assert cpu.status == "failed", cpu.detail
    assert cpu.error == "CPU time limit of 2 s exceeded", cpu.error
    assert survivors() == []


SHARED_MEMORY = """\
@PYTHON@ - > out.txt 2>&1 <<'PY'
import mmap
held = mmap.mmap(-1, 512 * 1024 * 1024)  # shared and anonymous: not private data
for page in range(0, len(held), mmap.PAGESIZE):
    held[page] = 1
print("held")
PY
"""


@pytest.mark.xfail(
    strict=True,
    reason="RLIMIT_DATA counts private memory only: shared anonymous memory is not limited "
    "(a memory cgroup would count it)",
)
def test_09_shared_memory_is_held_to_the_memory_limit(jail: Jail, user: httpx.Client) -> None:
    script = fill(SHARED_MEMORY, PYTHON=PYTHON)
    job = run_jobs(user, {"shared": ("jail", script)})["shared"]

    assert job.status == "failed" and "held" not in job.out, job.out


# 10 -----------------------------------------------------------------------------------------
QUOTA_REASON = f"output quota of {QUOTA} bytes exceeded"
OUTPUT_FLOODS = {
    # One file: the file size limit stops it.
    "one file": "dd if=/dev/zero of=big.bin bs=1M count=5 2>/dev/null\n",
    # Many small files, written faster than the executor looks.
    "many files": (
        f"{PYTHON} -c \"[open(f'part{{i}}.bin', 'wb').write(bytes(512 * 1024)) "
        'for i in range(10)]"\n'
    ),
    # Files written slowly: the executor's look at the folder stops it.
    "slowly": "for i in $(seq 50); do head -c 262144 /dev/zero > part$i.bin; sleep 0.1; done\n",
}


def test_10_output_past_the_quota_fails_the_job_and_is_cut(jail: Jail, user: httpx.Client) -> None:
    ended = run_jobs(user, {name: ("jail", script) for name, script in OUTPUT_FLOODS.items()})

    for name, job in ended.items():
        assert job.status == "failed", (name, job.detail)
        assert job.error.startswith(QUOTA_REASON), (name, job.error)
        folder = task_dir(jail, job.id)
        held = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        assert 0 < held <= QUOTA, (name, held)


def test_10_logs_past_the_quota_fail_the_job_and_are_cut(jail: Jail, user: httpx.Client) -> None:
    flood = "head -c 5242880 /dev/zero | tr '\\0' x"
    streams = {"stdout": ("jail", f"{flood}\n"), "stderr": ("jail", f"{flood} >&2\n")}
    ended = run_jobs(user, streams)

    for stream, job in ended.items():
        assert job.status == "failed", job.detail
        assert job.error.startswith(QUOTA_REASON), job.error
        log = jail.server.data_dir / "jobs" / job.id / "logs" / f"task-0.{stream}"
        assert 0 < log.stat().st_size <= QUOTA, stream


TMP_FLOOD = """\
for i in $(seq 10); do head -c 524288 /dev/zero > /tmp/part$i 2>/dev/null; done
cat /tmp/part* | wc -c > out.txt
"""


def test_10_tmp_holds_at_most_the_quota(jail: Jail, user: httpx.Client) -> None:
    job = run_jobs(user, {"tmp": ("jail", TMP_FLOOD)})["tmp"]

    # /tmp is in memory and out of the task folder: the quota bounds it all the same.
    assert job.status == "completed", job.detail
    assert 0 < int(job.out) <= QUOTA, job.out


# 11 -----------------------------------------------------------------------------------------
OUTLIVE = """\
nohup bash -c 'exec -a @MARKER@-nohup sleep 1000' > /dev/null 2>&1 &
setsid -f bash -c 'exec -a @MARKER@-setsid sleep 1000' > /dev/null 2>&1
( ( exec -a @MARKER@-daemon sleep 1000 ) & ) > /dev/null 2>&1
for i in $(seq 100); do
    [ "$(ps -eo args | grep -c '^@MARKER@')" = 3 ] && break
    sleep 0.1
done
ps -eo args | grep -c '^@MARKER@' > out.txt
id -u >> out.txt
"""


def test_11_nothing_outlives_its_task(jail: Jail, user: httpx.Client) -> None:
    marker = f"outlive-{uuid.uuid4().hex}"
    ended = run_jobs(user, in_both(fill(OUTLIVE, MARKER=marker)))

    for job in ended.values():
        assert job.status == "completed", job.detail
        running, uid = job.out.split()
        assert running == "3", job.out  # all three were running when run.sh ended
        if AS_ROOT:
            assert TASK_UID_BASE <= int(uid) <= TASK_UID_BASE + SLOTS, job.out
    assert survivors(marker) == []


# 12, 13: a cyclotron worker ----------------------------------------------------------------
@dataclass(frozen=True)
class Farm:
    jail: Jail
    tmp_path: Path


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A server whose ``remote`` service runs on ``cyclotron worker`` processes over Redis."""
    workdir = tmp_path_factory.mktemp("escape-workers")
    keys = _keys()
    remote = {**JAIL, "executor": "celery"}
    config = _config(keys, workdir / "data", {"remote": remote})
    config["executors"]["celery"] = broker("escape")
    server = LiveServer(workdir, "unused", config, {"CYCLOTRON_API_KEY": keys.admin}).start()
    try:
        yield Farm(Jail(server, keys), workdir)
    finally:
        server.stop()


@pytest.fixture
def worker(farm: Farm) -> Iterator[Worker]:
    name = f"w{uuid.uuid4().hex[:6]}"
    started = Worker(farm.tmp_path, farm.jail.server.config_path, name).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.redis
def test_12_a_worker_task_cannot_change_the_servers_database(farm: Farm, worker: Worker) -> None:
    jail = farm.jail
    planted = f"cyc_{secrets.token_urlsafe(24)}"
    rows_before = key_rows(jail.database)
    script = fill(REPRODUCER, DB=jail.database, PYTHON=PYTHON, DIGEST=_digest(planted))
    with jail.client(jail.keys.user) as user:
        job = run_jobs(user, {"reproducer": ("remote", script)}, timeout=180)["reproducer"]

    assert_reproducer_failed(job, jail.database, planted)
    assert key_rows(jail.database) == rows_before
    with jail.client(planted) as intruder:
        assert intruder.get("/api/jobs").status_code == 401


SLEEPER = """\
bash -c 'exec -a @MARKER@ sleep 1000' &
wait
"""


@pytest.mark.redis
def test_13_a_killed_workers_sandbox_dies_with_it(farm: Farm, worker: Worker) -> None:
    jail = farm.jail
    marker = f"worker-child-{uuid.uuid4().hex}"
    with jail.client(jail.keys.user) as user:
        create(
            user,
            {
                "name": "sleeper",
                "service": "remote",
                "ntasks": 1,
                "input": {"kind": "files", "files": {"run.sh": fill(SLEEPER, MARKER=marker)}},
            },
        )
    deadline = time.monotonic() + 120
    while not _processes(lambda _uid, cmdline: marker.encode() in cmdline):
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    worker.kill()

    assert survivors(marker) == [], worker.log()
