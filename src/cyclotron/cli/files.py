"""``cyclotron submit|status|download``: file-upload jobs, through ``cyclotron.client``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from cyclotron.client import Client, UploadStatus

TERMINAL = {"Completed", "Failed", "Invalid", "Killed", "Cleaned"}
# How long a submission is sent again while the server cannot be reached.
SUBMIT_RETRY_FOR = 120.0
console = Console(stderr=True)

ServerOption = Annotated[
    str, typer.Option("--server", envvar="CYCLOTRON_URL", help="Base URL of the server.")
]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="CYCLOTRON_API_KEY", help="API key, if required.")
]


def client_for(server: str, api_key: str | None, retry_for: float = 0.0) -> Client:
    """The server's client; a request whose connection fails is sent again for
    ``retry_for`` seconds (none by default: a command fails at once)."""
    # Imported here: ``cyclotron serve`` loads this module, and needs neither the client
    # nor its NumPy and httpx.
    from cyclotron.client import Client

    return Client(server, api_key=api_key, timeout=60, retry_for=retry_for)


@contextmanager
def reported(unreachable: str = "cannot reach the server") -> Iterator[None]:
    """The client's errors as the CLI prints them (the status and the server's message),
    then exit status 1."""
    from cyclotron.client import ApiError, ConnectionFailed

    try:
        yield
    except ApiError as exc:
        console.print(f"[red]{exc.status_code}[/red] {exc.detail}")
        raise typer.Exit(1) from None
    except ConnectionFailed as exc:
        console.print(f"[red]{unreachable}[/red]: {exc}")
        raise typer.Exit(1) from None


def wait_for(client: Client, job_id: int, interval: float = 0.5) -> UploadStatus:
    """Poll until the job ends, showing its status live."""
    started = time.monotonic()
    with console.status(f"job {job_id}: submitted") as live:
        while True:
            found = client.upload_status(job_id)
            live.update(f"job {job_id}: {found.status} ({time.monotonic() - started:.0f} s)")
            if found.status in TERMINAL:
                return found
            time.sleep(interval)


def _save_zip(client: Client, job_id: int, output: Path) -> None:
    found = client.download_upload(job_id, output)
    if found.status != "Completed":
        console.print(f"job {job_id} is {found.status}, no ZIP yet")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command()
    def submit(
        files: Annotated[
            list[Path],
            typer.Argument(exists=True, dir_okay=False, help="run.sh and its input files."),
        ],
        service: Annotated[str, typer.Option(help="Service to run the job.")] = "example",
        user_id: Annotated[int, typer.Option("--user-id", min=0)] = 0,
        wait: Annotated[bool, typer.Option(help="Wait for the end and download the ZIP.")] = True,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Where to save the ZIP.")
        ] = None,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Upload files (one of them run.sh) as a job; wait for it and download its results.

        The upload carries a new ``Idempotency-Key`` and is sent again with it while the
        connection fails (for up to two minutes): a request cut off after the server stored
        the job gets that job's answer, so the server makes one job however often it is sent.
        """
        with client_for(server, api_key, SUBMIT_RETRY_FOR) as client:
            with reported("not submitted"):
                job_id = client.upload(files, service=service, user_id=user_id)
            typer.echo(job_id)
            if not wait:
                return
            with reported():
                found = wait_for(client, job_id)
                if found.status != "Completed":
                    console.print(f"job {job_id} ended {found.status}: {found.message}")
                    raise typer.Exit(1)
                target = output or Path(f"{job_id}.zip")
                _save_zip(client, job_id, target)
            console.print(f"job {job_id} Completed; results in {target}")

    @app.command()
    def status(
        job_id: int, server: ServerOption = "http://127.0.0.1:5000", api_key: KeyOption = None
    ) -> None:
        """Print a job's status."""
        with client_for(server, api_key) as client, reported():
            found = client.upload_status(job_id)
        typer.echo(f"{found.id} {found.status} {found.message}".rstrip())

    @app.command()
    def download(
        job_id: int,
        output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Save a Completed job's ZIP."""
        target = output or Path(f"{job_id}.zip")
        with client_for(server, api_key) as client, reported():
            _save_zip(client, job_id, target)
        console.print(f"saved {target}")
