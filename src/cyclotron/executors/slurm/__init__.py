"""The ``slurm`` executor: whole jobs as task arrays on clusters, and what it needs to reach them.

:mod:`.executor` is the executor (entry point ``slurm``); :mod:`.commands` turns options,
scripts and SLURM's answers into text and back (pure functions); :mod:`.remote` runs commands
and moves files over SSH, or on this machine; :mod:`.steps` is what runs on the cluster.
Only :mod:`.commands` is re-exported here: :mod:`.remote` loads paramiko, which a server
without clusters never needs, so it is imported where a cluster is reached.
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

__all__ = [
    "ARRAY_TASK_ID",
    "BatchOptions",
    "ShellVariable",
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
