"""What ``cyclotron serve`` loads: the engines' numerical code, the SSH client, the structure
library and the Python client stay out of the server process until a job or a request needs
them. Each is tens of MiB of resident memory a user would see on a server that never runs it
(bench/memory.py measures the figures).

The server runs in a fresh interpreter (an import made by another test must not count): the
CLI module ``serve`` starts from, the embedded defaults over SQLite, the app with its
background threads started, and ``GET /api/services`` answered, which loads every default
service's plug-in. Started again over the same database, it has no migration to apply and
leaves Alembic unloaded too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVER = """
import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient

import cyclotron.cli.main  # noqa: F401  (what `cyclotron serve` imports first)
from cyclotron.api.app import create_app
from cyclotron.services.core import build_core
from cyclotron.settings import load_settings

data_dir = Path(sys.argv[1])
settings = load_settings(data_dir / "cyclotron.toml", environ={}, overrides={
    "server": {"data_dir": str(data_dir), "database_url": f"sqlite:///{data_dir}/cyclotron.db"}
})
with TestClient(create_app(build_core(settings))) as client:
    services = client.get("/api/services").json()["services"]
print(json.dumps({"services": services, "modules": sorted(sys.modules)}))
"""

# Loaded only in a task's own process, or once a job, a cluster or a file needs them.
NOT_IN_THE_SERVER = (
    "numba",  # the builtin engine's kernels (and llvmlite under them)
    "llvmlite",
    "scipy",
    "opentps",
    "cyclotron.simulators.builtin.physics",
    "cyclotron.simulators.builtin.transport",
    "cyclotron.simulators.builtin.kernel",
    "paramiko",  # the slurm executor's SSH, once a cluster is reached
    "cyclotron.executors.slurm.remote",
    "gemmi",  # AlphaFold structures, once one is read
    "cyclotron.client",  # the CLI's HTTP client (NumPy and httpx with it)
)


def serve_once(data_dir: Path) -> tuple[set[str], set[str]]:
    """The plug-ins of the available services, and the modules the server process loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLOTRON_")}
    run = subprocess.run(
        [sys.executable, "-c", SERVER, str(data_dir)],
        cwd=data_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.splitlines()[-1])
    plugins = {service["plugin"] for service in found["services"] if service["available"]}
    return plugins, set(found["modules"])


def test_serving_the_catalog_loads_no_engine_code(tmp_path: Path) -> None:
    (tmp_path / "cyclotron.toml").write_text("")
    plugins, loaded = serve_once(tmp_path)
    assert {"builtin", "mcsquare", "script"} <= plugins  # the engines' plug-ins did load
    assert "cyclotron.simulators.builtin.plugin" in loaded
    heavy = [name for name in NOT_IN_THE_SERVER if name in loaded]
    assert heavy == [], f"the server imported {heavy}"
    assert "alembic" in loaded  # a new database: the migrations ran

    _, loaded = serve_once(tmp_path)
    heavy = [name for name in (*NOT_IN_THE_SERVER, "alembic") if name in loaded]
    assert heavy == [], f"the server imported {heavy} at its second start"
