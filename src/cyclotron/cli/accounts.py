"""``cyclotron users`` and ``cyclotron clusters``: accounts and clusters of the YAPTIDE face."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from cyclotron.services.core import Core

users_app = typer.Typer(help="Accounts of the YAPTIDE face.", no_args_is_help=True)
clusters_app = typer.Typer(help="SLURM clusters and who may use them.", no_args_is_help=True)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
]


@contextmanager
def _core(config: Path | None) -> Iterator[Core]:
    from cyclotron.cli.config import settings_or_exit
    from cyclotron.errors import CyclotronError
    from cyclotron.services.core import build_core

    settings = settings_or_exit(config)
    try:
        core = build_core(settings)
    except CyclotronError as exc:
        typer.echo(f"configuration error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    try:
        yield core
    except CyclotronError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    finally:
        core.close()


@users_app.command("add")
def add_user(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    cluster_access: Annotated[
        bool, typer.Option("--cluster-access", help="May send simulations to clusters.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a local user (the password is asked for, or read from standard input)."""
    from cyclotron.services.access.accounts import Accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _core(config) as core:
        user = Accounts(core).add_user(username, password, cluster_access=cluster_access)
    typer.echo(f"user {user.username} created (id {user.id})")


@users_app.command("list")
def list_users(config: ConfigOption = None) -> None:
    """List users (never their password hashes)."""
    from cyclotron.services.access.accounts import Accounts

    table = Table("id", "username", "provider", "clusters", "created")
    with _core(config) as core:
        for user in Accounts(core).list_users():
            table.add_row(
                str(user.id),
                user.username,
                user.provider,
                "yes" if user.cluster_access else "",
                user.created_at.isoformat(timespec="seconds"),
            )
    Console().print(table)


@users_app.command("remove")
def remove_user(username: str, config: ConfigOption = None) -> None:
    """Remove a local user; their logins end at once."""
    from cyclotron.services.access.accounts import Accounts

    with _core(config) as core:
        Accounts(core).remove_user(username)
    typer.echo(f"user {username} removed")


@users_app.command("grant-clusters")
def grant_clusters(
    username: str,
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the access.")] = False,
    config: ConfigOption = None,
) -> None:
    """Allow a local user to send simulations to clusters (or withdraw it)."""
    from cyclotron.services.access.accounts import Accounts

    with _core(config) as core:
        Accounts(core).set_cluster_access(username, not revoke)
    typer.echo(f"cluster access {'withdrawn from' if revoke else 'granted to'} {username}")


@clusters_app.command("add")
def add_cluster(
    name: str,
    display_name: Annotated[str | None, typer.Option(help="Name shown to users.")] = None,
    host: Annotated[
        str | None, typer.Option(help="SSH host of the login node; 'local' runs sbatch here.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="SSH user.")] = None,
    port: Annotated[int | None, typer.Option(help="SSH port (default 22).")] = None,
    key_path: Annotated[str | None, typer.Option(help="SSH private key file.")] = None,
    known_hosts: Annotated[
        str | None, typer.Option(help="known_hosts file the host key is checked against.")
    ] = None,
    work_dir: Annotated[
        str | None, typer.Option(help="Absolute directory for job files on the cluster.")
    ] = None,
    python: Annotated[
        str | None, typer.Option(help="Python with Cyclotron installed, on the compute nodes.")
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="This server's address as the compute nodes reach it.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Add a cluster, or change an existing one."""
    from cyclotron.services.yaptide.clusters import add_cluster as add

    given = {
        "host": host,
        "user": user,
        "port": port,
        "key_path": key_path,
        "known_hosts_path": known_hosts,
        "work_dir": work_dir,
        "python": python,
        "api_url": api_url,
    }
    options = {k: v for k, v in given.items() if v}
    with _core(config) as core:
        info = add(core, name, display_name, options or None)
    typer.echo(f"cluster {info.name} ({info.display_name}) saved")


@clusters_app.command("list")
def list_clusters(config: ConfigOption = None) -> None:
    """List clusters."""
    from cyclotron.services.yaptide.clusters import list_clusters as listed

    table = Table("name", "display name", "available", "options")
    with _core(config) as core:
        for info in listed(core):
            options = ", ".join(f"{k}={v}" for k, v in sorted(info.options.items()))
            table.add_row(info.name, info.display_name, "yes" if info.available else "no", options)
    Console().print(table)
