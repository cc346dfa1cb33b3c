"""``cyclotron submit|status|download``: file-upload jobs through the HTTP API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

TERMINAL = {"Completed", "Failed", "Invalid", "Killed", "Cleaned"}
console = Console(stderr=True)

ServerOption = Annotated[
    str, typer.Option("--server", envvar="CYCLOTRON_URL", help="Base URL of the server.")
]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="CYCLOTRON_API_KEY", help="API key, if required.")
]


def client_for(server: str, api_key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=60)


def _fail(response: httpx.Response) -> None:
    try:
        message = response.json().get("message", response.text)
    except ValueError:
        message = response.text
    console.print(f"[red]{response.status_code}[/red] {message}")
    raise typer.Exit(1)


def _status(client: httpx.Client, job_id: int) -> dict[str, Any]:
    response = client.get(f"/download/{job_id}")
    if response.status_code != 200:
        _fail(response)
    if response.headers.get("content-type", "").startswith("application/zip"):
        response.close()
        return {"id": job_id, "status": "Completed", "message": ""}
    body: dict[str, Any] = response.json()
    return body


def _save_zip(client: httpx.Client, job_id: int, output: Path) -> None:
    with client.stream("GET", f"/download/{job_id}") as response:
        if response.headers.get("content-type", "").startswith("application/zip"):
            with output.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
            return
        response.read()
        _fail(response) if response.status_code != 200 else None
        console.print(f"job {job_id} is {response.json()['status']}, no ZIP yet")
        raise typer.Exit(1)


def wait_for(client: httpx.Client, job_id: int, interval: float = 0.5) -> dict[str, Any]:
    """Poll until the job ends, showing its status live."""
    started = time.monotonic()
    with console.status(f"job {job_id}: submitted") as live:
        while True:
            body = _status(client, job_id)
            live.update(f"job {job_id}: {body['status']} ({time.monotonic() - started:.0f} s)")
            if body["status"] in TERMINAL:
                return body
            time.sleep(interval)


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
        """Upload files (one of them run.sh) as a job; wait for it and download its results."""
        with client_for(server, api_key) as client:
            handles = [path.open("rb") for path in files]
            try:
                response = client.post(
                    "/upload",
                    data={"user_id": str(user_id), "service": service},
                    files=[
                        ("file", (path.name, handle))
                        for path, handle in zip(files, handles, strict=True)
                    ],
                )
            finally:
                for handle in handles:
                    handle.close()
            if response.status_code != 201:
                _fail(response)
            job_id = int(response.json()["id"])
            typer.echo(job_id)
            if not wait:
                return
            body = wait_for(client, job_id)
            if body["status"] != "Completed":
                console.print(f"job {job_id} ended {body['status']}: {body['message']}")
                raise typer.Exit(1)
            target = output or Path(f"{job_id}.zip")
            _save_zip(client, job_id, target)
            console.print(f"job {job_id} Completed; results in {target}")

    @app.command()
    def status(
        job_id: int, server: ServerOption = "http://127.0.0.1:5000", api_key: KeyOption = None
    ) -> None:
        """Print a job's status."""
        with client_for(server, api_key) as client:
            body = _status(client, job_id)
        typer.echo(f"{body['id']} {body['status']} {body['message']}".rstrip())

    @app.command()
    def download(
        job_id: int,
        output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Save a Completed job's ZIP."""
        with client_for(server, api_key) as client:
            target = output or Path(f"{job_id}.zip")
            _save_zip(client, job_id, target)
        console.print(f"saved {target}")
