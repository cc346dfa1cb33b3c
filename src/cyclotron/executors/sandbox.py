"""A task's confinement: bubblewrap namespaces, an unprivileged uid, and kernel limits.

Inside a task's sandbox (``[sandbox] mode = "bwrap"``, the default):

- its own mount, PID, IPC, UTS and (unless its service sets ``network = true``) network
  namespaces; the system (``/usr``, ``/etc``, ``/opt``, the Python the server runs) read-only,
  with a private ``/tmp``, ``/proc`` and ``/dev``; its working directory the only writable
  place; nothing else of the data directory, no home directory, no ``/run`` (so no database
  socket) and never the configuration file;
- a server running as root runs each task slot under a uid of its own (``task_uid_base`` +
  slot), with no capabilities and no new privileges; a server running as another user runs
  tasks under its own uid inside a user namespace;
- when the task's main process ends, the namespace's init ends and the kernel kills every
  process left in it (a ``nohup sleep`` included).

Limits are rlimits set before the task's command (bubblewrap included) is executed: CPU
seconds (``RLIMIT_CPU``, per process), private memory (``RLIMIT_DATA``), processes
(``RLIMIT_NPROC``, counted per uid, so only with a uid per slot) and the size of one file
(``RLIMIT_FSIZE``). util-linux's ``prlimit`` sets them and executes the command, so that the
server starts the task without copying itself (``vfork``); where it is missing, the server's
child sets them itself before ``exec``. The executor watches the working directory's total
size against the output quota.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cyclotron
from cyclotron.domain.ports import TaskLimits, TaskRun
from cyclotron.settings import Settings

log = logging.getLogger(__name__)

BWRAP = "bwrap"
PRLIMIT = "prlimit"
# prlimit's option for each limit.
PRLIMIT_OPTIONS = {
    resource.RLIMIT_CPU: "--cpu",
    resource.RLIMIT_DATA: "--data",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_NPROC: "--nproc",
}
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
PROBE_TIMEOUT = 10.0
CPU_GRACE_SECONDS = 5  # SIGXCPU at the limit, SIGKILL this much later


@dataclass(frozen=True)
class Sandbox:
    """How this process confines the tasks it starts."""

    configured: str  # "bwrap" or "none", as [sandbox] mode says
    bwrap: str | None  # the bubblewrap in force; None: tasks run unconfined
    reason: str | None  # why tasks run unconfined
    as_root: bool
    uid_base: int
    hidden: tuple[Path, ...]  # never visible inside (the data directory, the configuration)
    prlimit: str | None = None  # util-linux's prlimit, which sets the limits; None: the child

    @classmethod
    def of(cls, settings: Settings) -> Sandbox:
        """The sandbox the settings ask for, tried once: a missing or failing bwrap leaves
        tasks unconfined, with the reason (the server refuses untrusted code then)."""
        config = settings.config or os.environ.get("CYCLOTRON_CONFIG")
        hidden = [settings.server.data_dir.resolve()]
        if config:
            hidden.append(Path(config).resolve())
        as_root = os.geteuid() == 0
        bwrap: str | None = None
        reason: str | None = '[sandbox] mode is "none"'
        if settings.sandbox.mode == "bwrap":
            bwrap, reason = shutil.which(BWRAP), "bubblewrap (bwrap) is not installed"
        if bwrap is not None:
            problem = _probe(bwrap, as_root=as_root)
            if problem is None:
                reason = None
            else:
                bwrap, reason = None, f"bubblewrap cannot run here: {problem}"
        return cls(
            configured=settings.sandbox.mode,
            bwrap=bwrap,
            reason=reason,
            as_root=as_root,
            uid_base=settings.sandbox.task_uid_base,
            hidden=tuple(hidden),
            prlimit=shutil.which(PRLIMIT),
        )

    @property
    def mode(self) -> str:
        """The mode in force: "bwrap" or "none"."""
        return "bwrap" if self.bwrap is not None else "none"

    def uid_of_slot(self, slot: int) -> int | None:
        """The uid a task slot runs under (a root server only)."""
        return self.uid_base + slot if self.bwrap is not None and self.as_root else None

    def command(self, run: TaskRun, uid: int | None, die_with_parent: bool = False) -> list[str]:
        """The argv that runs the task's command confined (the command alone when unconfined);
        ``die_with_parent``: everything in the sandbox ends when the starting thread does."""
        argv = list(run.command.argv)
        if self.bwrap is None:
            return argv
        workdir = run.workdir.resolve()
        args = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-uts"]
        args.append("--unshare-cgroup-try")
        if not run.limits.network:
            args.append("--unshare-net")
        if not self.as_root:
            args.append("--unshare-user")
        if die_with_parent:
            args.append("--die-with-parent")
        for path in SYSTEM_PATHS:
            args += _system_bind(path)
        readable = self._readable(run)
        writable = [str(Path(p).resolve()) for p in run.limits.writable_paths]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777"]
        if run.limits.output_bytes is not None:  # what /tmp holds counts against no quota else
            args += ["--size", str(run.limits.output_bytes)]
        args += ["--tmpfs", "/tmp"]
        for parent in _parents_to_make([*readable, *writable, str(workdir)]):
            args += ["--perms", "0755", "--dir", parent]
        for path in readable:
            args += ["--ro-bind-try", path, path]
        for secret in self.hidden:  # a configuration file under a system path
            if secret.is_file():
                args += ["--ro-bind-try", "/dev/null", str(secret)]
        args += ["--bind", str(workdir), str(workdir)]
        for path in writable:  # a folder of its own per uid, seen at the shared path
            args += ["--bind", _own_folder(Path(path), uid), path]
        args += ["--chdir", str(workdir), "--setenv", "HOME", str(workdir)]
        args += ["--setenv", "TMPDIR", "/tmp", "--"]
        if uid is not None:
            args += [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--no-new-privs",
                "--bounding-set=-all",
                "--inh-caps=-all",
                "--",
            ]
        return args + argv

    def _readable(self, run: TaskRun) -> list[str]:
        """What the task reads outside the system: the Python running the server (engines
        run as its modules), the command's own files, and what its service names; never a
        path that holds (or lies in) a hidden one, nor the task's own working directory."""
        wanted = [*run.limits.read_only_paths]
        for part in run.command.argv:
            if os.path.isabs(part) and os.path.exists(part):
                wanted.append(str(Path(part).resolve().parent))
        workdir = run.workdir.resolve()
        readable: list[str] = []
        for path in [*self._python_paths, *self._allowed(tuple(wanted))]:
            # Never a folder above the working directory (a worker started in its scratch
            # space): the task must see its own directory only, through folders it may cross.
            if str(path) not in readable and not _overlaps(path, workdir):
                readable.append(str(path))
        return readable

    @functools.cached_property
    def _python_paths(self) -> list[Path]:
        """The Python this process runs, found once: its prefixes, its absolute ``sys.path``
        entries and the folder holding the ``cyclotron`` package."""
        wanted = [sys.prefix, sys.base_prefix, *(p for p in sys.path if os.path.isabs(p))]
        wanted.append(str(Path(cyclotron.__file__).resolve().parent.parent))
        return self._allowed(tuple(wanted))

    def _allowed(self, wanted: tuple[str, ...]) -> list[Path]:
        """The existing paths among ``wanted``, resolved, once each, none near a hidden one."""
        allowed: list[Path] = []
        for text in wanted:
            path = Path(text).resolve()
            if path in allowed or not path.exists():
                continue
            if not any(_overlaps(path, hidden) for hidden in self.hidden):
                allowed.append(path)
        return allowed

    def prepare(self, run: TaskRun, uid: int | None) -> None:
        """Give the task's uid its working directory."""
        if uid is None:
            return
        for root, dirs, files in os.walk(run.workdir):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), uid, uid)
        os.chown(run.workdir, uid, uid)

    def limiter(self, limits: TaskLimits, uid: int | None) -> Callable[[], None]:
        """What the child sets before ``exec``: the task's rlimits."""
        settings = rlimits(limits, uid)

        def apply() -> None:
            for kind, soft, hard in settings:
                resource.setrlimit(kind, (soft, hard))

        return apply

    def limit_command(self, limits: TaskLimits, uid: int | None) -> list[str] | None:
        """The argv that sets the task's rlimits and executes what follows it (nothing when
        there are none); None without ``prlimit``: the child must set them (``limiter``)."""
        settings = rlimits(limits, uid)
        if not settings:
            return []
        if self.prlimit is None:
            return None
        options = [f"{PRLIMIT_OPTIONS[kind]}={soft}:{hard}" for kind, soft, hard in settings]
        return [self.prlimit, *options, "--"]


def rlimits(limits: TaskLimits, uid: int | None) -> list[tuple[int, int, int]]:
    """The task's rlimits: each one's kind, soft and hard value."""
    settings: list[tuple[int, int, int]] = []
    if limits.cpu_seconds is not None:
        seconds = max(1, int(limits.cpu_seconds))
        settings.append((resource.RLIMIT_CPU, seconds, seconds + CPU_GRACE_SECONDS))
    for kind, value in (
        (resource.RLIMIT_DATA, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.output_bytes),
        (resource.RLIMIT_NPROC, limits.max_processes if uid is not None else None),
    ):
        if value is not None:
            settings.append((kind, int(value), int(value)))
    return settings


def exit_signal(code: int) -> int | None:
    """The signal that ended a sandboxed command (bubblewrap exits with 128 + its number)."""
    return code - 128 if 128 < code < 128 + signal.NSIG else None


def limit_of_signal(signum: int | None) -> str | None:
    """The limit a signal tells of: SIGXCPU the CPU time, SIGXFSZ the output."""
    if signum == signal.SIGXCPU:
        return "cpu"
    return "output" if signum == signal.SIGXFSZ else None


def directory_size(root: Path) -> int:
    """Bytes of the regular files below ``root`` (links are not followed)."""
    total = 0
    for base, _, files in os.walk(root):
        for name in files:
            try:
                stat = os.lstat(os.path.join(base, name))
            except OSError:
                continue
            total += stat.st_size
    return total


def trim_to(root: Path, quota: int) -> None:
    """Cut the newest files until what ``root`` holds fits in ``quota`` bytes."""
    excess = directory_size(root) - quota
    if excess <= 0:
        return
    files = []
    for base, _, names in os.walk(root):
        for name in names:
            path = Path(base, name)
            try:
                stat = path.lstat()
            except OSError:
                continue
            if path.is_file() and not path.is_symlink():
                files.append((stat.st_mtime, stat.st_size, path))
    for _, size, path in sorted(files, reverse=True):
        if excess <= 0:
            return
        cut = min(size, excess)
        with open(path, "r+b") as handle:
            handle.truncate(size - cut)
        excess -= cut


def _own_folder(shared: Path, uid: int | None) -> str:
    """``shared/<uid>``, made for ``uid`` (every task slot keeps its own copy: one uid never
    reads what another wrote); the shared folder itself without a uid of its own."""
    folder = shared / str(uid) if uid is not None else shared
    folder.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        os.chown(folder, uid, uid)
    return str(folder)


def _parents_to_make(paths: list[str]) -> list[str]:
    """The folders above ``paths`` that the sandbox's empty root lacks, outermost first, to be
    made traversable (a bound path under ``/root`` must be reachable by the task's uid)."""
    made: dict[str, None] = {}
    for text in paths:
        parts = text.split("/")[1:-1]
        for depth in range(1, len(parts) + 1):
            name = "/" + "/".join(parts[:depth])
            if name in made or name == "/tmp" or _under_system(name):
                continue
            made[name] = None
    return list(made)


def _under_system(path: str) -> bool:
    """Whether ``path`` is a system folder, or inside or above one (bound as it is)."""
    return any(
        path == system or path.startswith(system + "/") or system.startswith(path + "/")
        for system in SYSTEM_PATHS
    )


def _overlaps(path: Path, other: Path) -> bool:
    return path == other or path in other.parents or other in path.parents


def _system_bind(path: str) -> list[str]:
    """A system folder read-only; a link (``/bin`` → ``usr/bin``) as the same link."""
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    return ["--ro-bind-try", path, path]


def _probe(bwrap: str, *, as_root: bool) -> str | None:
    """Why bubblewrap cannot make a sandbox here (no user namespaces, ...), or None."""
    argv = [bwrap, "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/"]
    if not as_root:
        argv.append("--unshare-user")
    try:
        done = subprocess.run(
            [*argv, "--", "true"], capture_output=True, timeout=PROBE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode("utf-8", errors="replace").strip() or f"exit {done.returncode}"
    return None
