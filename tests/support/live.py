"""A real ``cyclotron serve`` process on a free port, for tests that speak HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_toml(config: dict[str, Any]) -> str:
    """Enough TOML for test configurations: tables of scalars, nested tables, arrays of tables."""
    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any]) -> None:
        scalars = {
            k: v for k, v in body.items() if not isinstance(v, dict) and not _is_table_list(v)
        }
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in scalars.items())
        for key, value in body.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                table(name, value)
            elif _is_table_list(value):
                for item in value:
                    lines.append(f"[[{name}]]")
                    lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())

    table("", config)
    return "\n".join(lines) + "\n"


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


class LiveServer:
    """Starts, kills and restarts one server over the same data directory and database."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        config: dict[str, Any],
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "cyclotron.toml"
        merged = dict(config)
        merged["server"] = {
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.data_dir),
            "database_url": database_url,
            **config.get("server", {}),
        }
        self.config_path.write_text(render_toml(merged))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOTRON_")}
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    def start(self) -> LiveServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cyclotron", "serve", "--config", str(self.config_path)],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {STARTUP_TIMEOUT} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is cleaned up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kwargs)


@contextmanager
def serving(
    backend: str, workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    """A started server on a fresh database of ``backend``; stopped and dropped afterwards,
    once checked for errors that show the server's paths (``support.leaks``)."""
    from support.databases import database_url
    from support.leaks import assert_no_server_paths

    with database_url(backend, workdir) as url:
        live = LiveServer(workdir, url, config, env).start()
        try:
            yield live
        finally:
            live.stop()
        assert_no_server_paths(url, workdir)
