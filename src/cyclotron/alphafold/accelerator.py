"""The accelerator an AlphaFold 3 service runs on, as the AlphaFold 3 app's status reports it.

``chip_family``, ``memory_gb`` and ``supports_bfloat16`` come from the service's settings
where the site gives them (a worker's GPU is not the server's), else from what this machine
reports: its first NVIDIA GPU (``nvidia-smi``: name, memory, compute capability; bfloat16
needs 8.0, Ampere, or later), else its CPU (model name, main memory, the ``avx512_bf16`` or
``amx_bf16`` flag). The machine is asked once per process.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3
MIB = 1024**2
# Compute capability from which NVIDIA GPUs compute in bfloat16 (Ampere).
BF16_COMPUTE_CAPABILITY = 8.0
NVIDIA_SMI_TIMEOUT = 5.0


@dataclass(frozen=True)
class Accelerator:
    chip_family: str
    memory_gb: float
    supports_bfloat16: bool

    def as_status(self) -> dict[str, Any]:
        return {
            "chip_family": self.chip_family,
            "memory_gb": self.memory_gb,
            "supports_bfloat16": self.supports_bfloat16,
        }


def configured_or_detected(options: Mapping[str, Any]) -> Accelerator:
    """The service's ``chip_family``/``memory_gb``/``supports_bfloat16``, each where given,
    else this machine's."""
    found = detected()
    return Accelerator(
        chip_family=str(options.get("chip_family", found.chip_family)),
        memory_gb=float(options.get("memory_gb", found.memory_gb)),
        supports_bfloat16=bool(options.get("supports_bfloat16", found.supports_bfloat16)),
    )


@functools.cache
def detected() -> Accelerator:
    """This machine's first NVIDIA GPU, else its CPU and memory."""
    return _nvidia_gpu() or _cpu()


def parse_nvidia_smi(output: str) -> Accelerator | None:
    """The first GPU of ``nvidia-smi --query-gpu=name,memory.total,compute_cap
    --format=csv,noheader,nounits`` (memory in MiB)."""
    for line in output.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not fields[0]:
            continue
        try:
            memory = float(fields[1]) * MIB / GIB
        except ValueError:
            continue
        try:
            bf16 = float(fields[2]) >= BF16_COMPUTE_CAPABILITY
        except ValueError:  # "[N/A]" on old drivers
            bf16 = False
        return Accelerator(fields[0], round(memory, 1), bf16)
    return None


def parse_cpuinfo(text: str, memory_bytes: int) -> Accelerator:
    """The CPU of ``/proc/cpuinfo`` with ``memory_bytes`` of main memory."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    return Accelerator(model or "CPU", round(memory_bytes / GIB, 1), bf16)


def _nvidia_gpu() -> Accelerator | None:
    program = shutil.which("nvidia-smi")
    if program is None:
        return None
    query = "--query-gpu=name,memory.total,compute_cap"
    try:
        done = subprocess.run(
            [program, query, "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else None


def _cpu() -> Accelerator:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return parse_cpuinfo(text, memory)
