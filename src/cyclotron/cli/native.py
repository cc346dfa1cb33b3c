"""``cyclotron jobs|watch|cancel|results``: the native /api from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from cyclotron.cli.files import KeyOption, ServerOption, client_for

console = Console(stderr=True)
FINAL = {"completed": 0, "failed": 1, "cancelled": 1}


def _detail_or_exit(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}[/red] {detail}")
        raise typer.Exit(1)
    return response.json()


def _websocket_url(server: str, job: str, api_key: str | None) -> str:
    base = server.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    url = f"{base}/api/jobs/{job}/progress"
    return f"{url}?token={api_key}" if api_key else url


def watch_job(server: str, job: str, api_key: str | None) -> str:
    """Follow a job's progress live, one bar per task; returns its final status."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    bars: dict[int, TaskID] = {}
    final = "unknown"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
    )
    with (
        Progress(*columns, console=console) as progress,
        connect(_websocket_url(server, job, api_key)) as socket,
    ):
        overall = progress.add_task(f"job {job}", total=100)
        try:
            for raw in socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "error":
                    console.print(f"[red]{message['error']}[/red]")
                    raise typer.Exit(1)
                if "percent" in message:
                    progress.update(overall, completed=message["percent"])
                for task in message.get("tasks", []):
                    bar = bars.setdefault(
                        task["index"], progress.add_task(f"  task {task['index']}", total=100)
                    )
                    progress.update(bar, completed=task["percent"])
                if kind == "progress" and message.get("task_index") in bars:
                    progress.update(bars[message["task_index"]], completed=message["task_percent"])
                done = kind == "task_state" and message["state"] == "completed"
                if done and message["task_index"] in bars:
                    progress.update(bars[message["task_index"]], completed=100)
                if kind in FINAL:
                    final = kind
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == 4001:
                console.print("[red]the server refused the API key[/red]")
                raise typer.Exit(1) from None
    return final


def register(app: typer.Typer) -> None:
    @app.command()
    def jobs(
        status: Annotated[str | None, typer.Option(help="Comma list: pending,running,...")] = None,
        service: Annotated[str | None, typer.Option()] = None,
        page: Annotated[int, typer.Option(min=1)] = 1,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """List jobs, newest first."""
        params: dict[str, Any] = {"page": page}
        if status:
            params["status"] = status
        if service:
            params["service"] = service
        with client_for(server, api_key) as client:
            listing = _detail_or_exit(client.get("/api/jobs", params=params))
        table = Table("number", "id", "name", "service", "status", "stage", "percent")
        for job in listing["jobs"]:
            table.add_row(
                str(job["number"]),
                job["id"],
                job["name"],
                job["service"],
                job["status"],
                job["stage"],
                f"{job['percent']:.1f}",
            )
        Console().print(table)
        console.print(f"{listing['total']} job(s) in all; page {listing['page']}")

    @app.command()
    def watch(
        job: str,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Follow a job's progress until it ends (exit status 0 only if it completed)."""
        final = watch_job(server, job, api_key)
        console.print(f"job {job} {final}")
        raise typer.Exit(FINAL.get(final, 1))

    @app.command()
    def cancel(
        job: str,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Cancel a job."""
        with client_for(server, api_key) as client:
            answer = _detail_or_exit(client.post(f"/api/jobs/{job}/cancel"))
        typer.echo(answer["status"])

    @app.command()
    def results(
        job: str,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Save the ZIP here.")
        ] = None,
        server: ServerOption = "http://127.0.0.1:5000",
        api_key: KeyOption = None,
    ) -> None:
        """Print a completed job's results summary, or save its result ZIP with --output."""
        with client_for(server, api_key) as client:
            if output is None:
                typer.echo(
                    json.dumps(_detail_or_exit(client.get(f"/api/jobs/{job}/results")), indent=2)
                )
                return
            with client.stream("GET", f"/api/jobs/{job}/results/download") as response:
                if response.status_code != 200:
                    response.read()
                    _detail_or_exit(response)
                with output.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
        console.print(f"saved {output}")
