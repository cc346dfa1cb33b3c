"""``cyclotron``: run the server, manage the database and keys, submit and fetch jobs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cyclotron import __version__
from cyclotron.cli import accounts, files, keys, native
from cyclotron.cli.config import settings_or_exit
from cyclotron.errors import ConfigError

app = typer.Typer(
    help="Cyclotron: a self-hosted job server for scientific simulations.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(accounts.users_app, name="users")
app.add_typer(accounts.clusters_app, name="clusters")
files.register(app)
native.register(app)
err = Console(stderr=True)
SWITCH_INTERVAL = 0.0005

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (default ./cyclotron.toml)."),
]


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 5000).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (default ./cyclotron-data).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the API, the dispatcher and the local executor in one process."""
    import uvicorn

    from cyclotron.api.app import create_app
    from cyclotron.services.core import build_core

    server: dict[str, Any] = {}
    if host is not None:
        server["host"] = host
    if port is not None:
        server["port"] = port
    if data_dir is not None:
        server["data_dir"] = data_dir
    settings = settings_or_exit(config, {"server": server} if server else None)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The dispatcher, task supervisors and request threads each hold the interpreter lock for
    # short bursts; a shorter switch interval than the default 5 ms keeps one from making
    # the others wait (see bench/upload_latency.py).
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        core = build_core(settings)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    uvicorn.run(
        create_app(core),
        host=settings.server.host,
        port=settings.server.port,
        log_level="warning",
        timeout_graceful_shutdown=15,
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Tasks run at once (default: the CPUs).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="This worker's name (default: host-pid).")
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Scratch space for the tasks' working directories.")
    ] = Path("./cyclotron-worker"),
    api_url: Annotated[
        str | None,
        typer.Option(help="The server's address (default: the one in each task's message)."),
    ] = None,
    retry_for: Annotated[
        float, typer.Option(min=0, help="Seconds to keep retrying a report the server refuses.")
    ] = 3600.0,
    config: ConfigOption = None,
) -> None:
    """Run tasks from the Celery broker ([executors.celery]) and report them to the server."""
    from cyclotron.executors.celery.app import celery_app
    from cyclotron.executors.celery.worker import WorkerRuntime, default_name, register

    overrides = {"executors": {"local": {"max_parallel": concurrency}}} if concurrency else None
    settings = settings_or_exit(config, overrides)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    slots = settings.executors.local.max_parallel
    worker_name = name or default_name()
    celery = celery_app(settings.executors.celery)
    register(celery, WorkerRuntime(settings, worker_name, data_dir, api_url, retry_for))
    celery.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={slots}",
            f"--queues={settings.executors.celery.queue}",
            f"--hostname={worker_name}@%h",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the database migrations."""
    from cyclotron.services.core import upgrade_database

    revision, kind = upgrade_database(settings_or_exit(config))
    typer.echo(f"database at revision {revision} ({kind})")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
