"""``aiomero emulator``: serve an emulated OMERO server until interrupted."""

from __future__ import annotations

from typing import Any

import click

from ._connect import FiniteFloatRange, usage_errors

__all__ = ["emulator"]


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="address to listen on"
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4064,
    show_default=True,
    help="SSL port, for logins (0: any free port)",
)
@click.option(
    "--insecure-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="plain TCP port for insecure sessions [default: any free port]",
)
@click.option(
    "--catalog",
    default="default",
    show_default=True,
    help="default (the test catalog), idr (IDR-shaped), or module:function "
    "returning a Catalog",
)
@click.option(
    "--scale",
    type=FiniteFloatRange(0, 1, min_open=True),
    default=0.001,
    show_default=True,
    help="size of the idr catalog; 1 is about 14 million images",
)
@click.option(
    "--latency-ms",
    type=FiniteFloatRange(0),
    default=0.0,
    show_default=True,
    help="delay every reply by this many milliseconds",
)
@click.option(
    "--idle-timeout",
    type=FiniteFloatRange(0),
    default=600.0,
    show_default=True,
    help="seconds before an idle session expires (0: never)",
)
@click.option(
    "--router",
    type=click.Choice(["builtin", "glacier2"]),
    default="builtin",
    show_default=True,
    help="who plays the Glacier2 router; glacier2 needs glacier2router",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Ice server threads",
)
def emulator(**opts: Any) -> None:
    """Serve an emulated OMERO server until Ctrl-C, for trying clients out.

    Prints how to connect and the users with their passwords (test fixtures,
    not secrets).
    """
    from ..testing.command import open_emulator, parse_args, serve_until_stopped

    argv = [
        "--host",
        opts["host"],
        "--port",
        str(opts["port"]),
        "--catalog",
        opts["catalog"],
        "--scale",
        str(opts["scale"]),
        "--latency-ms",
        str(opts["latency_ms"]),
        "--idle-timeout",
        str(opts["idle_timeout"]),
        "--router",
        opts["router"],
        "--threads",
        str(opts["threads"]),
    ]
    if opts["insecure_port"]:
        argv += ["--insecure-port", str(opts["insecure_port"])]
    with usage_errors():
        started = open_emulator(parse_args(argv))
    raise SystemExit(serve_until_stopped(started))
