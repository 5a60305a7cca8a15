"""``aiomero whoami``: who the server says you are, and how far away it is."""

from __future__ import annotations

import statistics
from typing import Any

import click

from ..errors import AiomeroError
from ._connect import (
    EXIT_INTERRUPTED,
    connection_options,
    exit_for,
    resolve_target,
    running_target,
)
from ._run import Interrupted, run_command

__all__ = ["whoami"]

_PINGS = 5


@click.command()
@connection_options
def whoami(**opts: Any) -> None:
    """Log in, then print the user, its groups, whether it is an
    administrator, and the round-trip time to the server."""
    from ..gateway import AsyncGateway

    target = resolve_target(
        host=opts["host"],
        port=opts["port"],
        username=opts["username"],
        secure=opts["secure"],
        config=opts["config"],
        demo_scale=0.001,
    )

    async def main() -> dict[str, Any]:
        with running_target(target) as settings:
            async with AsyncGateway.from_settings(settings) as gateway:
                user = await gateway.getUser()
                groups = await gateway.getGroupsMemberOf()
                admin = await gateway.isAdmin()
                info = await gateway.session_info()
                trips = [await gateway.ping() for _ in range(_PINGS)]
        return {
            "user": user,
            "groups": groups,
            "admin": admin,
            "info": info,
            "rtt": statistics.median(trips),
        }

    try:
        found = run_command(main)
    except Interrupted:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except AiomeroError as exc:
        raise exit_for(exc, target.where) from None

    user, info = found["user"], found["info"]
    full_name = user.getFullName()
    click.echo(
        f"user:    {user.omeName} (id {user.id})"
        + (f", {full_name}" if full_name else "")
    )
    click.echo(f"server:  {target.where} ({'secure' if info.secure else 'insecure'})")
    click.echo(f"group:   {info.group_name} (id {info.group_id}), the session's")
    names = ", ".join(f"{g.name} ({g.id})" for g in found["groups"])
    click.echo(f"groups:  {names or '-'}")
    click.echo(f"admin:   {'yes' if found['admin'] else 'no'}")
    click.echo(f"rtt:     {found['rtt'] * 1000:.2f} ms (median of {_PINGS} pings)")
