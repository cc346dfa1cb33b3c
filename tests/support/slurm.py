"""A single-node SLURM cluster on localhost, reached through a private sshd, for the tests.

    with local_cluster(tmp_dir) as cluster:          # or start_local_cluster(...) / .stop()
        remote = SshRemote(cluster.ssh_target())
        ...

What it does (``scripts/ensure-slurm`` installs the packages first; nothing here installs):

- MUNGE: creates ``/etc/munge/munge.key`` if absent, fixes the ownership munged demands, and
  starts munged unless ``munge -n | unmunge`` already works.
- SLURM: writes ``/etc/slurm/slurm.conf`` (the default place, so ``sbatch`` over SSH needs no
  environment) for one node ``localhost`` with this machine's CPUs and memory, no accounting
  storage, and ``MinJobAge=600`` so that ended jobs stay visible to ``squeue --states=all``.
  A config this module did not write (no marker line) is never overwritten. It starts
  slurmctld and slurmd when they are not running (restarting them when it changed the
  config), resumes the node if it is DOWN or DRAINED, and waits until it is idle.
  **The SLURM daemons and munged are left running** after :meth:`LocalCluster.stop`: they
  are shared by every test session on the machine, and starting them again costs seconds.
  :func:`stop_slurm` stops slurmctld and slurmd when wanted.
- A system user (``cyclotron-hpc``) with a home directory and bash as its shell: jobs run as
  that user. The user must be able to run the test suite's Python (the ``.venv``); when a
  directory on the way lacks the search (``x``) bit for others, it is added to that
  directory alone (``/root`` on machines where pyenv lives there), and logged.
- sshd: a private instance on a free port of 127.0.0.1 with its own host key, key
  authentication only (plain keys, or certificates signed by its own user CA), started from
  and logging to the caller's directory. It is stopped by
  :meth:`LocalCluster.stop`, which also removes the session's key from the user's
  ``authorized_keys``.

Everything needs root; when the tests do not run as root, privileged commands go through
``sudo -n``. Failures raise RuntimeError saying what failed and what to do.
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cyclotron.executors.slurm.remote import SshTarget

log = logging.getLogger(__name__)

USERNAME = "cyclotron-hpc"
PARTITION = "debug"
CLUSTER_NAME = "cyclotron"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Written by Cyclotron's tests/support/slurm.py, which rewrites it when it differs."
MUNGE_KEY = Path("/etc/munge/munge.key")
_LOCK = Path("/tmp/cyclotron-test-slurm.lock")
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_INSTALL_HINT = "run scripts/ensure-slurm (it installs slurm-wlm, munge and openssh-server)"
_SLURM_RUN = Path("/run/slurm")
_SLURMCTLD_PID = _SLURM_RUN / "slurmctld.pid"
_SLURMD_PID = _SLURM_RUN / "slurmd.pid"
_SLURM_LOGS = Path("/var/log/slurm")
_READY_NODE_STATES = {"idle", "mixed", "allocated", "completing"}
USER_CA = "user_ca"


@dataclass(frozen=True)
class LocalCluster:
    """What a test needs to reach the cluster: SSH coordinates, key, known host, partition.

    ``user_ca_path`` is a private key the sshd trusts for user certificates: sign a key with
    ``ssh-keygen -s <user_ca_path> -I <id> -n <username> <key>.pub`` to log in with a
    certificate, as a Keycloak-issued one would.
    """

    ssh_host: str
    ssh_port: int
    username: str
    home: str
    key_path: Path
    known_hosts_path: Path
    host_key: str
    partition: str
    sshd_log_path: Path
    user_ca_path: Path
    _sshd: subprocess.Popen[bytes] = field(repr=False, compare=False)
    _authorized_line: str = field(repr=False, compare=False)

    def ssh_target(self) -> SshTarget:
        """An :class:`SshTarget` for the test user (vary it with ``dataclasses.replace``)."""
        return SshTarget(
            host=self.ssh_host,
            port=self.ssh_port,
            username=self.username,
            key_path=self.key_path,
            known_hosts_path=self.known_hosts_path,
        )

    def accepted_connections(self) -> int:
        """How many SSH logins the private sshd has accepted so far."""
        text = self.sshd_log_path.read_text(errors="replace")
        return len(re.findall(rf"Accepted publickey for {re.escape(self.username)} ", text))

    def stop(self) -> None:
        """Stop the private sshd and withdraw the session's key; SLURM and munged stay up."""
        if self._sshd.poll() is None:
            self._sshd.terminate()
            try:
                self._sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._sshd.kill()
                self._sshd.wait()
        _remove_authorized_key(self.username, self._authorized_line)


@contextmanager
def local_cluster(
    workdir: Path, *, username: str = USERNAME, python: Path | None = None
) -> Iterator[LocalCluster]:
    """:func:`start_local_cluster`, stopped at the end."""
    cluster = start_local_cluster(workdir, username=username, python=python)
    try:
        yield cluster
    finally:
        cluster.stop()


def start_local_cluster(
    workdir: Path, *, username: str = USERNAME, python: Path | None = None
) -> LocalCluster:
    """Bring up MUNGE, SLURM, the test user and a private sshd; files go under ``workdir``.

    ``python`` (the running interpreter by default) is made runnable by the test user.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with _setup_lock():
        ensure_munge()
        ensure_slurm()
        home = ensure_user(username)
        ensure_python_access(username, python or Path(sys.executable))
        key_path, public_key = _client_key(workdir)
        line = f"{public_key} cyclotron-test-{uuid.uuid4().hex[:12]}"
        _add_authorized_key(username, home, line)
    try:
        sshd, port, host_key, log_path = _start_sshd(workdir, username)
    except BaseException:
        _remove_authorized_key(username, line)
        raise
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key}\n")
    return LocalCluster(
        ssh_host="127.0.0.1",
        ssh_port=port,
        username=username,
        home=home,
        key_path=key_path,
        known_hosts_path=known_hosts,
        host_key=host_key,
        partition=PARTITION,
        sshd_log_path=log_path,
        user_ca_path=workdir / USER_CA,
        _sshd=sshd,
        _authorized_line=line,
    )


# --- privileges and programs ------------------------------------------------------------------


def _is_root() -> bool:
    return os.geteuid() == 0


def _privileged(argv: Sequence[str]) -> list[str]:
    return list(argv) if _is_root() else ["sudo", "-n", *argv]


def _as_user(user: str, argv: Sequence[str]) -> list[str]:
    if _is_root():
        return ["runuser", "-u", user, "--", *argv]
    return ["sudo", "-n", "-u", user, "--", *argv]


def _run(
    argv: Sequence[str], *, input: bytes | None = None, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(
            list(argv), input=input, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise RuntimeError(f"{argv[0]} is not installed: {_INSTALL_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(argv)} did not finish in {timeout} s") from exc
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed with exit status {result.returncode}: "
            f"{result.stderr.decode(errors='replace').strip()[-1000:]}"
            + ("" if _is_root() else " (the SLURM tests need root or password-less sudo)")
        )
    return result


def _program(name: str) -> str:
    path = shutil.which(name, path=_SBIN_PATH)
    if path is None:
        raise RuntimeError(f"{name} is not installed: {_INSTALL_HINT}")
    return path


def _write_root_file(path: Path, data: bytes, mode: int, owner: str, group: str) -> None:
    """Create or replace a file that needs root, with its owner and mode set first."""
    if _is_root():
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chown(temporary, pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    else:
        _run(
            _privileged(["install", "-m", f"{mode:o}", "-o", owner, "-g", group, "/dev/stdin"])
            + [str(path)],
            input=data,
        )


def _read_root_file(path: Path) -> bytes | None:
    if _is_root():
        return path.read_bytes() if path.exists() else None
    result = _run(_privileged(["cat", str(path)]), check=False)
    return result.stdout if result.returncode == 0 else None


def _make_dir(path: Path, mode: int, owner: str) -> None:
    _run(_privileged(["install", "-d", "-m", f"{mode:o}", "-o", owner, "-g", owner, str(path)]))


@contextmanager
def _setup_lock() -> Iterator[None]:
    """One setup at a time on this machine (parallel test sessions share the daemons)."""
    with open(_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait(what: str, ready: Callable[[], bool], timeout: float, hint: str) -> None:
    """Poll ``ready()`` every 0.2 s until true; RuntimeError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} within {timeout:.0f} s; {hint}")


def _pid_alive(pid_file: Path, name: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is ``name``."""
    try:
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == name else None


# --- MUNGE ------------------------------------------------------------------------------------


def munge_works() -> bool:
    """Whether ``munge -n | unmunge`` succeeds (munged is up and its key is usable)."""
    try:
        credential = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=False)
        if credential.returncode != 0:
            return False
        decoded = subprocess.run(
            ["unmunge"], input=credential.stdout, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return decoded.returncode == 0


def ensure_munge() -> None:
    """A MUNGE key and a running munged."""
    munged = _program("munged")
    _program("munge")
    if munge_works():
        return
    for directory, mode in (
        (MUNGE_KEY.parent, 0o700),
        (Path("/var/lib/munge"), 0o711),
        (Path("/var/log/munge"), 0o700),
        (Path("/run/munge"), 0o755),
    ):
        _make_dir(directory, mode, "munge")
    if _read_root_file(MUNGE_KEY) is None:
        _write_root_file(MUNGE_KEY, os.urandom(128), 0o600, "munge", "munge")
    _run(_privileged(["chown", "munge:munge", str(MUNGE_KEY)]))
    _run(_privileged(["chmod", "0600", str(MUNGE_KEY)]))
    _run(_as_user("munge", [munged]))
    _wait(
        "munged did not answer `munge -n | unmunge`",
        munge_works,
        15,
        "see /var/log/munge/munged.log",
    )


# --- SLURM ------------------------------------------------------------------------------------


def slurm_config() -> str:
    """The slurm.conf for one node ``localhost`` with this machine's CPUs and memory."""
    hardware = _run([_program("slurmd"), "-C"]).stdout.decode().splitlines()[0]
    words = [word for word in hardware.split() if not word.startswith("NodeName=")]
    return "\n".join(
        [
            MARKER,
            f"ClusterName={CLUSTER_NAME}",
            "SlurmctldHost=localhost",
            "AuthType=auth/munge",
            "SlurmUser=slurm",
            "SlurmdUser=root",
            "StateSaveLocation=/var/lib/slurm/slurmctld",
            "SlurmdSpoolDir=/var/lib/slurm/slurmd",
            f"SlurmctldPidFile={_SLURMCTLD_PID}",
            f"SlurmdPidFile={_SLURMD_PID}",
            f"SlurmctldLogFile={_SLURM_LOGS}/slurmctld.log",
            f"SlurmdLogFile={_SLURM_LOGS}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "MpiDefault=none",
            "ReturnToService=2",
            # Ended jobs stay visible to squeue --states=all this many seconds.
            "MinJobAge=600",
            "KillWait=5",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            f"NodeName=localhost {' '.join(words)} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def ensure_slurm() -> None:
    """slurmctld and slurmd running with :func:`slurm_config`, and the node idle."""
    slurmctld, slurmd = _program("slurmctld"), _program("slurmd")
    for name in ("sbatch", "squeue", "scancel", "sinfo", "scontrol"):
        _program(name)
    wanted = slurm_config()
    current = _read_root_file(SLURM_CONF)
    changed = current is None or current.decode(errors="replace") != wanted
    if changed:
        if current is not None and MARKER not in current.decode(errors="replace"):
            raise RuntimeError(
                f"{SLURM_CONF} exists and was not written by tests/support/slurm.py; move it "
                "away (this machine's SLURM would be reconfigured for the tests) and run again"
            )
        _make_dir(SLURM_CONF.parent, 0o755, "root")
        _write_root_file(SLURM_CONF, wanted.encode(), 0o644, "root", "root")
        stop_slurm()
    _make_dir(_SLURM_RUN, 0o755, "slurm")
    _make_dir(_SLURM_LOGS, 0o755, "slurm")
    for directory in ("/var/lib/slurm/slurmctld", "/var/lib/slurm/slurmd"):
        _make_dir(Path(directory), 0o755, "slurm")
    if _pid_alive(_SLURMCTLD_PID, "slurmctld") is None:
        _run(_privileged([slurmctld]))
    _wait(
        "slurmctld did not answer `scontrol ping`",
        _controller_up,
        30,
        f"see {_SLURM_LOGS}/slurmctld.log",
    )
    if _pid_alive(_SLURMD_PID, "slurmd") is None:
        _run(_privileged([slurmd, "-N", "localhost"]))
    _wait(
        "the node localhost did not become idle",
        _node_ready,
        60,
        f"see {_SLURM_LOGS}/slurmd.log and `sinfo -N -l`",
    )


def stop_slurm() -> None:
    """Stop slurmd and slurmctld if they run (they are left running by default)."""
    for pid_file, name in ((_SLURMD_PID, "slurmd"), (_SLURMCTLD_PID, "slurmctld")):
        pid = _pid_alive(pid_file, name)
        if pid is None:
            continue
        _run(_privileged(["kill", "-TERM", str(pid)]))
        _wait(f"{name} did not stop", _gone(pid), 30, f"kill it: kill -9 {pid}")


def _gone(pid: int) -> Callable[[], bool]:
    return lambda: not Path(f"/proc/{pid}").exists()


def _controller_up() -> bool:
    result = _run(["scontrol", "ping"], check=False, timeout=15)
    return b"is UP" in result.stdout


def _node_ready() -> bool:
    result = _run(
        ["sinfo", "--noheader", "--nodes=localhost", "--format=%T"], check=False, timeout=15
    )
    state = result.stdout.decode().strip()
    if state in _READY_NODE_STATES:
        return True
    if state.startswith(("down", "drain")) and not state.endswith("*"):
        _run(
            _privileged(["scontrol", "update", "nodename=localhost", "state=resume"]),
            check=False,
        )
    return False


# --- the test user ----------------------------------------------------------------------------


def ensure_user(username: str) -> str:
    """A system user with a home and a shell who can log in with a key; returns the home."""
    try:
        entry = pwd.getpwnam(username)
    except KeyError:
        _run(
            _privileged(["useradd", "--system", "--create-home", "--shell", "/bin/bash", username])
        )
        entry = pwd.getpwnam(username)
    if Path(entry.pw_shell).name not in {"bash", "sh"}:
        _run(_privileged(["usermod", "--shell", "/bin/bash", username]))
    if not Path(entry.pw_dir).is_dir():
        _make_dir(Path(entry.pw_dir), 0o755, username)
    # Without PAM, sshd refuses accounts whose password is locked ('!'); '*' only means
    # "no password", which is what a key-only account is.
    shadow = _run(_privileged(["getent", "shadow", username])).stdout.decode()
    if shadow.split(":")[1].startswith("!"):
        _run(_privileged(["usermod", "--password", "*", username]))
    return entry.pw_dir


def ensure_python_access(username: str, python: Path) -> list[Path]:
    """Make ``python`` runnable by ``username``; returns the directories given ``o+x``.

    Only the search bit is added, and only to directories on the way to the interpreter
    (following its symbolic links) that lack it.
    """
    check = [str(python), "-c", "import cyclotron"]
    if _run(_as_user(username, check), check=False).returncode == 0:
        return []
    changed: list[Path] = []
    for directory in _directories_on_the_way(python):
        if not os.stat(directory).st_mode & 0o001:
            _run(_privileged(["chmod", "o+x", str(directory)]))
            log.warning(
                "gave others the search bit on %s so that jobs can run %s", directory, python
            )
            changed.append(directory)
    result = _run(_as_user(username, check), check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"the user {username} cannot run {python} (`import cyclotron` failed: "
            f"{result.stderr.decode(errors='replace').strip()[-500:]}); make the virtual "
            "environment and its base interpreter readable by other users"
        )
    return changed


def _directories_on_the_way(path: Path) -> list[Path]:
    """Every directory crossed to reach ``path``, through each symbolic link it passes."""
    seen: list[Path] = []
    pending = [Path(os.path.abspath(path))]
    while pending:
        current = pending.pop()
        for parent in reversed(current.parents):
            if parent not in seen:
                seen.append(parent)
        if current.is_symlink():
            target = Path(os.readlink(current))
            pending.append(target if target.is_absolute() else current.parent / target)
        for parent in current.parents:
            if parent.is_symlink():
                pending.append(parent.resolve())
    return seen


def _client_key(workdir: Path) -> tuple[Path, str]:
    key = workdir / "id_ed25519"
    if not key.exists():
        _run(
            [_program("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "cyclotron-test"]
            + ["-f", str(key)]
        )
    key.chmod(0o600)
    words = Path(f"{key}.pub").read_text().split()
    return key, f"{words[0]} {words[1]}"


def _authorized_keys(username: str) -> Path:
    return Path(pwd.getpwnam(username).pw_dir) / ".ssh" / "authorized_keys"


def _add_authorized_key(username: str, home: str, line: str) -> None:
    _make_dir(Path(home) / ".ssh", 0o700, username)
    path = _authorized_keys(username)
    text = (_read_root_file(path) or b"").decode()
    lines = [existing for existing in text.splitlines() if existing.strip()]
    _write_root_file(path, ("\n".join([*lines, line]) + "\n").encode(), 0o600, username, username)


def _remove_authorized_key(username: str, line: str) -> None:
    with _setup_lock():
        path = _authorized_keys(username)
        text = (_read_root_file(path) or b"").decode()
        lines = [existing for existing in text.splitlines() if existing.strip() != line]
        data = ("\n".join(lines) + "\n").encode() if lines else b""
        _write_root_file(path, data, 0o600, username, username)


# --- sshd -------------------------------------------------------------------------------------


def _start_sshd(workdir: Path, username: str) -> tuple[subprocess.Popen[bytes], int, str, Path]:
    """A private sshd on a free port; returns it, its port, host key and log file."""
    sshd = _program("sshd")
    host_key = workdir / "ssh_host_ed25519_key"
    user_ca = workdir / USER_CA
    for key in (host_key, user_ca):
        if not key.exists():
            _run([_program("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    public = Path(f"{host_key}.pub").read_text().split()
    _make_dir(Path("/run/sshd"), 0o755, "root")  # sshd's privilege separation directory
    log_path = workdir / "sshd.log"
    for _attempt in range(3):
        port = _free_port()
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes yes",
                    "PermitRootLogin no",
                    f"AllowUsers {username}",
                    "MaxSessions 16",
                    "UseDNS no",
                    "PrintMotd no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    f"TrustedUserCAKeys {user_ca}.pub",
                    "Subsystem sftp internal-sftp",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        test = _run(_privileged([sshd, "-t", "-f", str(config)]), check=False)
        if test.returncode != 0:
            raise RuntimeError(
                f"sshd rejected its test configuration {config}: "
                f"{test.stderr.decode(errors='replace').strip()}"
            )
        process = subprocess.Popen(
            _privileged([sshd, "-D", "-f", str(config), "-E", str(log_path)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _answers_ssh(port, process, 10):
            return process, port, f"{public[0]} {public[1]}", log_path
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    tail = log_path.read_text(errors="replace")[-1000:] if log_path.exists() else ""
    raise RuntimeError(f"the test sshd did not start (see {log_path}): {tail}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ssh(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
                if connection.recv(8).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.1)
    return False
