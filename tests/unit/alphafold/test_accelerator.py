"""What the AlphaFold 3 status says of the service's accelerator and data pipeline
(spec/native.md §10): from the site's settings, else from the machine, read from the texts
``nvidia-smi`` and ``/proc/cpuinfo`` print."""

from __future__ import annotations

import sys
from pathlib import Path

from support.alphafold import SPEC_EXAMPLE

from cyclotron.alphafold.accelerator import (
    Accelerator,
    configured_or_detected,
    detected,
    parse_cpuinfo,
    parse_nvidia_smi,
)
from cyclotron.alphafold.plugin import AlphaFold3Plugin

# ``nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader,nounits``
H100 = "NVIDIA H100 80GB HBM3, 81559, 9.0\nNVIDIA H100 80GB HBM3, 81559, 9.0\n"
V100 = "Tesla V100-SXM2-16GB, 16384, 7.0\n"
CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme avx512f avx512_bf16 amx_bf16 amx_tile
"""


def test_the_first_gpu_of_nvidia_smi() -> None:
    assert parse_nvidia_smi(H100) == Accelerator("NVIDIA H100 80GB HBM3", 79.6, True)
    assert parse_nvidia_smi(V100) == Accelerator("Tesla V100-SXM2-16GB", 16.0, False)
    assert parse_nvidia_smi("") is None
    assert parse_nvidia_smi("No devices were found\n") is None


def test_the_cpu_where_there_is_no_gpu() -> None:
    found = parse_cpuinfo(CPUINFO, 64 * 1024**3)
    assert found == Accelerator("Intel(R) Xeon(R) Platinum 8480+", 64.0, True)
    assert parse_cpuinfo("flags : fpu avx2\n", 8 * 1024**3).supports_bfloat16 is False


def test_this_machine_reports_a_name_and_its_memory() -> None:
    found = detected()
    assert found.chip_family and found.memory_gb > 0
    assert found.as_status().keys() == {"chip_family", "memory_gb", "supports_bfloat16"}


def test_the_sites_settings_win() -> None:
    options = {"chip_family": "NVIDIA A100-SXM4-40GB", "memory_gb": 40, "supports_bfloat16": True}
    assert configured_or_detected(options) == Accelerator("NVIDIA A100-SXM4-40GB", 40.0, True)


def test_the_data_pipeline_runs_by_default_where_the_databases_are(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "pass"]
    assert AlphaFold3Plugin({"command": command}).run_data_pipeline is False
    missing = str(tmp_path / "missing")
    assert AlphaFold3Plugin({"command": command, "db_dir": missing}).run_data_pipeline is False
    assert AlphaFold3Plugin({"command": command, "db_dir": str(tmp_path)}).run_data_pipeline
    told = {"command": command, "db_dir": str(tmp_path), "run_data_pipeline": False}
    assert AlphaFold3Plugin(told).run_data_pipeline is False


def test_a_body_without_the_switch_gets_the_services_default(tmp_path: Path) -> None:
    body = {k: v for k, v in SPEC_EXAMPLE.items() if k != "runDataPipeline"}
    for options, expected in (({}, False), ({"db_dir": str(tmp_path)}, True)):
        plugin = AlphaFold3Plugin({"command": [sys.executable], **options})
        assert plugin.prepare(body, "alphafold3").settings.run_data_pipeline is expected
        told = plugin.prepare({**body, "runDataPipeline": not expected}, "alphafold3")
        assert told.settings.run_data_pipeline is not expected
