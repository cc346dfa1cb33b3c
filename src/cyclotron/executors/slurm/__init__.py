"""The ``slurm`` executor: whole jobs as task arrays on clusters, and what it needs to reach them.

:mod:`.executor` is the executor (entry point ``slurm``); :mod:`.commands` turns options,
scripts and SLURM's answers into text and back (pure functions); :mod:`.remote` runs commands
and moves files over SSH, or on this machine; :mod:`.steps` is what runs on the cluster.
"""

from __future__ import annotations

from cyclotron.executors.slurm.commands import (
    ARRAY_TASK_ID,
    BatchOptions,
    ShellVariable,
    TaskEffect,
    UnexpectedOutput,
    array_script,
    batch_options,
    collect_effect,
    collect_script,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    sacct_command,
    sbatch_command,
    scancel_command,
    squeue_command,
    task_effect,
)
from cyclotron.executors.slurm.remote import (
    CommandFailed,
    CommandResult,
    LocalRemote,
    Remote,
    RemoteError,
    RemoteTimeout,
    SshRemote,
    SshTarget,
)

__all__ = [
    "ARRAY_TASK_ID",
    "BatchOptions",
    "CommandFailed",
    "CommandResult",
    "LocalRemote",
    "Remote",
    "RemoteError",
    "RemoteTimeout",
    "ShellVariable",
    "SshRemote",
    "SshTarget",
    "TaskEffect",
    "UnexpectedOutput",
    "array_script",
    "batch_options",
    "collect_effect",
    "collect_script",
    "parse_sacct",
    "parse_sbatch",
    "parse_squeue",
    "sacct_command",
    "sbatch_command",
    "scancel_command",
    "squeue_command",
    "task_effect",
]
