"""Commands and files on the machine that submits to a cluster: over SSH, or right here.

    Remote                 run a shell command; write, read, copy and remove files
    ├── SshRemote          one persistent SSH connection (paramiko), SFTP for files
    └── LocalRemote        subprocesses and files on this machine (sbatch installed here)

    RemoteError            (a ServiceUnavailable) the host could not do what was asked
    ├── RemoteTimeout      a command or a transfer ran past its time limit
    └── CommandFailed      a command exited non-zero (raised by CommandResult.check)

Relative paths are relative to the login directory (SSH) or to the given working directory
(local). Nothing secret (private keys, certificates, file contents) enters a log line or an
exception message; commands are logged by their program name only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import select
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Self, TypeVar

import paramiko

from cyclotron.errors import ServiceUnavailable

log = logging.getLogger(__name__)

MAX_OUTPUT = 1024 * 1024
"""Bytes of stdout and of stderr a command result keeps by default; the rest is discarded."""
MAX_READ = 16 * 1024 * 1024
"""Largest file :meth:`Remote.read_file` returns by default."""
_CHUNK = 32 * 1024
_SHOWN_STDERR = 500

T = TypeVar("T")


class RemoteError(ServiceUnavailable):
    """The remote host could not be reached, refused us, or could not do what was asked."""


class RemoteTimeout(RemoteError):
    """A command or a file transfer ran past its time limit."""


class CommandFailed(RemoteError):
    """A command exited with a non-zero status."""

    def __init__(self, message: str, result: CommandResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class CommandResult:
    """How a command ended, with its output decoded as UTF-8 (bad bytes replaced).

    ``truncated`` is true when stdout or stderr went past the remote's output limit and only
    its beginning was kept.
    """

    exit_status: int
    stdout: str
    stderr: str
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def check(self, what: str) -> Self:
        """Return self if the command succeeded, else raise :class:`CommandFailed`.

        ``what`` names the command in the message (``"sbatch"``); the command line itself is
        left out, and stderr is cut to its last 500 characters.
        """
        if self.exit_status != 0:
            tail = self.stderr.strip()[-_SHOWN_STDERR:]
            raise CommandFailed(f"{what} failed with exit status {self.exit_status}: {tail}", self)
        return self


class Remote(ABC):
    """A place to run shell commands and keep files: a cluster's login node, or this machine.

    Instances are thread-safe. Use one as a context manager, or call :meth:`close`.
    """

    @abstractmethod
    def run(self, command: str, *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        """Run ``command`` through the login shell and wait for it, at most ``timeout`` seconds.

        A non-zero exit status is returned, not raised (see :meth:`CommandResult.check`).
        Raises :class:`RemoteTimeout` when the time is up (the command may go on running on
        the far side), :class:`RemoteError` when the host cannot be used.
        """

    @abstractmethod
    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Create or replace the file ``path`` with ``data``; it has ``mode`` before any data."""

    @abstractmethod
    def read_file(self, path: str, *, max_bytes: int = MAX_READ) -> bytes:
        """The content of ``path``; :class:`RemoteError` if it is larger than ``max_bytes``.

        Raises :class:`FileNotFoundError` if there is no such file.
        """

    @abstractmethod
    def put_tree(self, local_dir: Path, remote_dir: str) -> None:
        """Copy the directory tree ``local_dir`` into ``remote_dir``, creating directories.

        Regular files keep their permission bits; symbolic links to files are copied as files,
        symbolic links to directories are skipped. Existing files are replaced.
        """

    @abstractmethod
    def remove_tree(self, remote_dir: str) -> None:
        """Remove ``remote_dir`` and everything under it; nothing happens if it is absent."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; the instance may not be used afterwards. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# --- SSH --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in over SSH.

    The client key is ``key_path`` or ``private_key`` (the text of an OpenSSH or PEM private
    key, never shown in a repr), optionally with ``certificate`` (the text of an OpenSSH
    certificate for that key, such as one issued after a Keycloak login).

    The host is checked against ``known_hosts_path`` and/or the pinned ``host_key``
    (``"ssh-ed25519 AAAA..."``). An unknown host is refused unless ``accept_unknown_host`` is
    set; a host whose key differs from a known one is always refused.

    ``max_sessions`` bounds concurrent commands on the one connection; keep it below the
    server's ``MaxSessions`` (10 by default in OpenSSH), counting one session for SFTP.
    """

    host: str
    username: str
    port: int = 22
    key_path: Path | None = None
    private_key: str | None = field(default=None, repr=False)
    certificate: str | None = field(default=None, repr=False)
    known_hosts_path: Path | None = None
    host_key: str | None = None
    accept_unknown_host: bool = False
    connect_timeout: float = 15.0
    io_timeout: float = 120.0
    keepalive_interval: int = 30
    max_sessions: int = 8

    @property
    def where(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


class SshRemote(Remote):
    """A login node reached over one persistent SSH connection.

    The connection is opened on first use and shared by every command (each in its own
    session channel, at most ``max_sessions`` at a time) and by one SFTP session for files.
    When the connection has died, the next call reconnects once; a command that was already
    running when it died is not repeated.
    """

    def __init__(self, target: SshTarget) -> None:
        if (target.key_path is None) == (target.private_key is None):
            raise ValueError("give exactly one of key_path and private_key")
        unchecked = target.known_hosts_path is None and target.host_key is None
        if unchecked and not target.accept_unknown_host:
            raise ValueError(
                "give known_hosts_path or host_key, or set accept_unknown_host explicitly"
            )
        self.target = target
        self._pkey = _load_key(target)
        self._lock = threading.Lock()
        self._sftp_lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(target.max_sessions)
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._connections = 0
        self._closed = False

    @property
    def connections(self) -> int:
        """How many SSH connections this instance has opened (1 unless one died)."""
        return self._connections

    @property
    def transport(self) -> paramiko.Transport | None:
        """The current SSH transport, for diagnostics; None before the first call."""
        client = self._client
        return client.get_transport() if client is not None else None

    # commands

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        program = _program(command)
        started = time.monotonic()
        deadline = started + timeout
        with self._sessions:
            channel = self._open_session(timeout)
            try:
                result = _exchange(channel, command, stdin, deadline, self.target.where, program)
            finally:
                channel.close()
        log.debug(
            "%s on %s: exit %d in %.2f s",
            program,
            self.target.where,
            result.exit_status,
            time.monotonic() - started,
        )
        return result

    def _open_session(self, timeout: float) -> paramiko.Channel:
        transport = self._transport(None)
        try:
            return transport.open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if transport.is_active():  # refused on a live connection (MaxSessions): no retry
                raise RemoteError(
                    f"ssh to {self.target.where}: cannot open a session: {_kind(exc)}"
                ) from exc
            log.warning(
                "ssh connection to %s lost (%s); reconnecting", self.target.where, _kind(exc)
            )
        transport = self._transport(transport)
        try:
            return transport.open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise RemoteError(
                f"ssh to {self.target.where}: cannot open a session: {_kind(exc)}"
            ) from exc

    def _transport(self, dead: paramiko.Transport | None) -> paramiko.Transport:
        """The live transport, connecting if there is none or if it is ``dead``."""
        with self._lock:
            if self._closed:
                raise RemoteError(f"ssh to {self.target.where}: the connection was closed")
            client = self._client
            current = client.get_transport() if client is not None else None
            if current is not None and current.is_active() and current is not dead:
                return current
            self._drop_locked()
            client = self._connect_locked()
            self._client = client
            transport = client.get_transport()
            if transport is None:  # connect() succeeded, so this does not happen
                raise RemoteError(f"ssh to {self.target.where}: no transport after connecting")
            return transport

    def _connect_locked(self) -> paramiko.SSHClient:
        target = self.target
        client = paramiko.SSHClient()
        if target.known_hosts_path is not None:
            try:
                client.load_host_keys(str(target.known_hosts_path))
            except OSError as exc:
                raise RemoteError(
                    f"ssh to {target.where}: cannot read the known hosts file "
                    f"{target.known_hosts_path}: {_kind(exc)}"
                ) from None
        if target.host_key is not None:
            _pin_host_key(client, target)
        if target.accept_unknown_host:
            client.set_missing_host_key_policy(_AcceptAndLog())
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = _open_socket(target)
        try:
            client.connect(
                target.host,
                port=target.port,
                username=target.username,
                pkey=self._pkey,
                sock=sock,
                timeout=target.connect_timeout,
                banner_timeout=target.connect_timeout,
                auth_timeout=target.connect_timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except BaseException as exc:
            client.close()
            sock.close()
            raise _connect_error(target, exc) from None
        transport = client.get_transport()
        if transport is not None and target.keepalive_interval > 0:
            transport.set_keepalive(target.keepalive_interval)
        self._connections += 1
        log.info("ssh connection %d to %s open", self._connections, target.where)
        return client

    def _drop_locked(self) -> None:
        sftp, self._sftp = self._sftp, None
        client, self._client = self._client, None
        if sftp is not None:
            sftp.close()
        if client is not None:
            client.close()

    # files

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        def write(sftp: paramiko.SFTPClient) -> None:
            with sftp.open(path, "wb") as handle:
                handle.chmod(mode)
                handle.set_pipelined(True)
                handle.write(data)

        self._with_sftp(write, f"writing {path}")

    def read_file(self, path: str, *, max_bytes: int = MAX_READ) -> bytes:
        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as handle:
                size = handle.stat().st_size or 0
                if size > max_bytes:
                    raise RemoteError(f"{path} has more than the {max_bytes} bytes allowed")
                handle.prefetch(size)
                return handle.read(max_bytes + 1)[: max_bytes + 1]

        data = self._with_sftp(read, f"reading {path}")
        if len(data) > max_bytes:
            raise RemoteError(f"{path} has more than the {max_bytes} bytes allowed")
        return data

    def put_tree(self, local_dir: Path, remote_dir: str) -> None:
        if not local_dir.is_dir():
            raise NotADirectoryError(f"not a directory: {local_dir}")

        def put(sftp: paramiko.SFTPClient) -> None:
            _sftp_makedirs(sftp, remote_dir, local_dir.stat().st_mode & 0o777)
            for directory, dirnames, filenames in os.walk(local_dir):
                here = Path(directory)
                target = _remote_join(remote_dir, here.relative_to(local_dir))
                for name in sorted(dirnames):
                    if (here / name).is_symlink():
                        continue
                    _sftp_makedirs(sftp, f"{target}/{name}", (here / name).stat().st_mode & 0o777)
                for name in sorted(filenames):
                    source = here / name
                    if not source.is_file():
                        continue
                    with source.open("rb") as stream, sftp.open(f"{target}/{name}", "wb") as out:
                        out.chmod(source.stat().st_mode & 0o777)
                        out.set_pipelined(True)
                        shutil.copyfileobj(stream, out, _CHUNK)

        self._with_sftp(put, f"copying {local_dir} to {remote_dir}")

    def remove_tree(self, remote_dir: str) -> None:
        _check_removable(remote_dir)
        self.run(f"rm -rf -- {shlex.quote(remote_dir)}", timeout=self.target.io_timeout).check(
            "rm -rf"
        )

    def _with_sftp(self, operation: Callable[[paramiko.SFTPClient], T], what: str) -> T:
        with self._sftp_lock:
            for attempt in (1, 2):
                sftp = self._sftp_client()
                try:
                    return operation(sftp)
                except TimeoutError as exc:
                    raise RemoteTimeout(f"ssh to {self.target.where}: {what} timed out") from exc
                except (EOFError, paramiko.SSHException, OSError) as exc:
                    channel = sftp.get_channel()
                    if channel is not None and not channel.closed:
                        raise  # the file operation failed, not the connection
                    with self._lock:
                        if self._sftp is sftp:
                            self._sftp = None
                    if attempt == 2:
                        raise RemoteError(
                            f"ssh to {self.target.where}: {what} failed: {_kind(exc)}"
                        ) from exc
                    log.warning("sftp to %s lost (%s); reconnecting", self.target.where, _kind(exc))
            raise AssertionError("unreachable")

    def _sftp_client(self) -> paramiko.SFTPClient:
        sftp = self._sftp
        channel = sftp.get_channel() if sftp is not None else None
        if sftp is not None and channel is not None and not channel.closed:
            return sftp
        transport = self._transport(None)
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
        except (paramiko.SSHException, EOFError, OSError):
            transport = self._transport(transport)
            try:
                sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise RemoteError(
                    f"ssh to {self.target.where}: cannot start SFTP: {_kind(exc)}"
                ) from exc
        if sftp is None:
            raise RemoteError(f"ssh to {self.target.where}: cannot start SFTP")
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(self.target.io_timeout)
        with self._lock:
            self._sftp = sftp
        return sftp

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_locked()


class _AcceptAndLog(paramiko.MissingHostKeyPolicy):
    """Accept an unknown host key for this connection only, and say so in the log."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        log.warning(
            "accepting the unknown host key of %s (%s %s) because accept_unknown_host is set",
            hostname,
            key.get_name(),
            key.fingerprint,
        )
        client.get_host_keys().add(hostname, key.get_name(), key)


def _open_socket(target: SshTarget) -> socket.socket:
    try:
        sock = socket.create_connection((target.host, target.port), target.connect_timeout)
    except OSError as exc:
        raise RemoteError(f"ssh to {target.where}: cannot connect: {_kind(exc)}") from None
    # Without it, each small request waits for a delayed ACK (40 ms on Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _connect_error(target: SshTarget, exc: BaseException) -> BaseException:
    """What a failed login becomes; anything unexpected is passed on unchanged."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return RemoteError(
            f"ssh to {target.where}: the host key does not match the known one "
            f"({exc.key.get_name()} {exc.key.fingerprint})"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return RemoteError(f"ssh to {target.where}: the key was not accepted")
    if isinstance(exc, paramiko.SSHException):
        # Includes RejectPolicy's "Server '[host]:port' not found in known_hosts".
        return RemoteError(f"ssh to {target.where}: {exc}")
    if isinstance(exc, OSError | EOFError):
        return RemoteError(f"ssh to {target.where}: the connection failed: {_kind(exc)}")
    return exc


def _load_key(target: SshTarget) -> paramiko.PKey:
    try:
        if target.key_path is not None:
            key = paramiko.PKey.from_path(target.key_path)
        else:
            key = _key_from_text(target.private_key or "")
        if target.certificate is not None:
            key.load_certificate(target.certificate)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        source = str(target.key_path) if target.key_path is not None else "the private key text"
        raise RemoteError(
            f"ssh to {target.where}: cannot load {source} ({type(exc).__name__}); an "
            "unencrypted ed25519, ECDSA or RSA key in OpenSSH or PEM format is needed"
        ) from None
    return key


def _key_from_text(text: str) -> paramiko.PKey:
    kinds: tuple[type[paramiko.PKey], ...] = (
        paramiko.Ed25519Key,
        paramiko.ECDSAKey,
        paramiko.RSAKey,
    )
    for kind in kinds:
        try:
            return kind.from_private_key(StringIO(text))
        except paramiko.SSHException:
            continue
    raise ValueError("unsupported private key")


def _pin_host_key(client: paramiko.SSHClient, target: SshTarget) -> None:
    parts = (target.host_key or "").split()
    if len(parts) < 2:
        raise RemoteError(f"ssh to {target.where}: host_key must read '<type> <base64 key>'")
    try:
        key = paramiko.PKey.from_type_string(parts[0], _b64decode(parts[1]))
    except (ValueError, paramiko.SSHException) as exc:
        raise RemoteError(f"ssh to {target.where}: unusable host_key ({exc})") from None
    name = target.host if target.port == 22 else f"[{target.host}]:{target.port}"
    client.get_host_keys().add(name, key.get_name(), key)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("the key is not base64") from exc


def _exchange(
    channel: paramiko.Channel,
    command: str,
    stdin: bytes | None,
    deadline: float,
    where: str,
    program: str,
) -> CommandResult:
    """Run ``command`` on an open session channel and collect its bounded output."""
    stdout, stderr = _Bounded(MAX_OUTPUT), _Bounded(MAX_OUTPUT)
    try:
        channel.settimeout(max(deadline - time.monotonic(), 0.001))
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        channel.settimeout(0.0)
        while True:
            while channel.recv_ready():
                stdout.add(channel.recv(_CHUNK))
            while channel.recv_stderr_ready():
                stderr.add(channel.recv_stderr(_CHUNK))
            # sshd sends the exit status when the process ends, possibly before the rest of
            # its output: the output is complete at EOF (or when the channel closed).
            ended = channel.exit_status_ready() and (channel.eof_received or channel.closed)
            if ended and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RemoteTimeout(f"{program} on {where} ran past its time limit")
            select.select([channel], [], [], min(remaining, 0.05))
    except TimeoutError:
        raise RemoteTimeout(f"{program} on {where} ran past its time limit") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise RemoteError(f"{program} on {where}: the connection failed: {_kind(exc)}") from exc
    return CommandResult(
        exit_status=channel.recv_exit_status(),
        stdout=stdout.text(),
        stderr=stderr.text(),
        truncated=stdout.truncated or stderr.truncated,
    )


def _sftp_makedirs(sftp: paramiko.SFTPClient, path: str, mode: int) -> None:
    """``mkdir -p`` over SFTP."""
    parts = PurePosixPath(path).parts
    current = ""
    for index, part in enumerate(parts):
        current = part if index == 0 else str(PurePosixPath(current) / part)
        try:
            attrs = sftp.stat(current)
        except FileNotFoundError:
            sftp.mkdir(current, mode | 0o700)
            continue
        if attrs.st_mode is not None and not stat.S_ISDIR(attrs.st_mode):
            raise RemoteError(f"{current} exists and is not a directory")


def _remote_join(base: str, relative: Path) -> str:
    joined = PurePosixPath(base).joinpath(*relative.parts)
    return str(joined)


# --- this machine -----------------------------------------------------------------------------


class LocalRemote(Remote):
    """This machine: commands through ``/bin/sh -c`` in subprocesses, files with the OS.

    For a server that has ``sbatch`` installed locally. Relative paths are taken from
    ``workdir`` (the home directory by default), like an SSH login's.
    """

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir if workdir is not None else Path.home()

    def _path(self, path: str) -> Path:
        return self.workdir / path

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float) -> CommandResult:
        program = _program(command)
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=self.workdir,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        stdout, stderr = _Bounded(MAX_OUTPUT), _Bounded(MAX_OUTPUT)
        assert process.stdout is not None and process.stderr is not None
        threads = [
            threading.Thread(target=stdout.drain, args=(process.stdout,), daemon=True),
            threading.Thread(target=stderr.drain, args=(process.stderr,), daemon=True),
        ]
        if stdin:
            threads.append(threading.Thread(target=_feed, args=(process.stdin, stdin), daemon=True))
        for thread in threads:
            thread.start()
        try:
            exit_status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise RemoteTimeout(f"{program} ran past its time limit") from None
        finally:
            for thread in threads:
                thread.join(timeout=5)
        return CommandResult(
            exit_status=exit_status,
            stdout=stdout.text(),
            stderr=stderr.text(),
            truncated=stdout.truncated or stderr.truncated,
        )

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = self._path(path)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)

    def read_file(self, path: str, *, max_bytes: int = MAX_READ) -> bytes:
        with self._path(path).open("rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise RemoteError(f"{path} has more than the {max_bytes} bytes allowed")
        return data

    def put_tree(self, local_dir: Path, remote_dir: str) -> None:
        if not local_dir.is_dir():
            raise NotADirectoryError(f"not a directory: {local_dir}")
        target = self._path(remote_dir)
        target.mkdir(parents=True, exist_ok=True)
        for directory, dirnames, filenames in os.walk(local_dir):
            here = Path(directory)
            there = target / here.relative_to(local_dir)
            for name in dirnames:
                if not (here / name).is_symlink():
                    (there / name).mkdir(exist_ok=True)
            for name in filenames:
                if (here / name).is_file():
                    shutil.copyfile(here / name, there / name)
                    shutil.copymode(here / name, there / name)

    def remove_tree(self, remote_dir: str) -> None:
        _check_removable(remote_dir)
        target = self._path(remote_dir)
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)

    def close(self) -> None:
        """Nothing to release."""


def _feed(pipe: IO[bytes] | None, data: bytes) -> None:
    if pipe is None:
        return
    with contextlib.suppress(BrokenPipeError):
        try:
            pipe.write(data)
        finally:
            pipe.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- shared -----------------------------------------------------------------------------------


class _Bounded:
    """Keeps the first ``limit`` bytes written to it and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, data: bytes) -> None:
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[: max(room, 0)]
        if data:
            self.parts.append(data)
            self.size += len(data)

    def drain(self, stream: IO[bytes]) -> None:
        """Read a pipe to its end, keeping what fits."""
        with stream:
            while chunk := os.read(stream.fileno(), _CHUNK):
                self.add(chunk)

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", errors="replace")


def _program(command: str) -> str:
    """The first word of a command, which is all that logs and errors show of it."""
    words = command.split(maxsplit=1)
    return PurePosixPath(words[0]).name if words else "(empty command)"


def _kind(exc: BaseException) -> str:
    """An exception as its type and message, for errors about connections (no secrets there)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_removable(path: str) -> None:
    """Refuse to remove a directory that cannot be a job's: empty, the root, ``..`` tricks."""
    pure = PurePosixPath(path)
    if not path.strip() or pure == PurePosixPath("/") or ".." in pure.parts or path in {".", "~"}:
        raise ValueError(f"refusing to remove {path!r}")
