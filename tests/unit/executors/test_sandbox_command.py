"""What a task's sandbox binds: never a folder above its working directory, nor a hidden one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cyclotron.domain.ports import TaskCommand, TaskLimits, TaskRun
from cyclotron.executors.sandbox import Sandbox
from cyclotron.settings import load_settings


def bound_read_only(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--ro-bind-try"]


def test_a_python_path_above_the_working_directory_is_not_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker started in its scratch space has that folder on sys.path (python -m).
    scratch = tmp_path / "worker"
    workdir = scratch / "tasks" / "w1" / "job" / "work"
    workdir.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(scratch), *sys.path])
    config = tmp_path / "cyclotron.toml"
    config.write_text("")
    settings = load_settings(
        config, environ={}, overrides={"server": {"data_dir": str(tmp_path / "data")}}
    )
    sandbox = Sandbox(
        configured="bwrap",
        bwrap="/usr/bin/bwrap",
        reason=None,
        as_root=True,
        uid_base=2_000_000,
        hidden=(tmp_path / "data", config.resolve()),
    )
    run = TaskRun(
        "job", "example", 0, 1, workdir, workdir / "o", workdir / "e",
        TaskCommand(("bash", "run.sh")), None, TaskLimits(),
    )  # fmt: skip
    args = sandbox.command(run, 2_000_001)
    readable = bound_read_only(args)
    assert str(scratch.resolve()) not in readable
    assert not any(str(tmp_path / "data") in path for path in readable)
    assert sys.prefix in readable or str(Path(sys.prefix).resolve()) in readable
    at = args.index("--bind")
    assert args[at + 1 : at + 3] == [str(workdir.resolve())] * 2
    assert settings.sandbox.mode == "bwrap"
