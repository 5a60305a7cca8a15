"""``python -m aiomero.testing``: serve an emulated OMERO until interrupted.

::

    python -m aiomero.testing --port 4064 --insecure-port 4063
    python -m aiomero.testing --catalog idr --scale 0.01 --latency-ms 20

It prints how to connect and the catalog's users with their passwords (they
are test fixtures, not secrets), then one line starting with
:data:`READY_PREFIX` that programs starting it wait for. A catalog, address
or port it cannot use is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from aiomero.testing.catalog import Catalog, default_catalog
from aiomero.testing.server import Emulator

__all__ = [
    "READY_PREFIX",
    "build_catalog",
    "open_emulator",
    "parse_args",
    "serve",
    "serve_until_stopped",
]

#: The line that says the emulator listens, followed by key=value fields.
READY_PREFIX = "aiomero-emulator ready"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; argparse exits on bad arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m aiomero.testing",
        description="Serve an emulated OMERO server for tests, until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=4064, help="SSL port (0: any)")
    parser.add_argument(
        "--insecure-port", type=int, default=None, help="TCP port (default: any)"
    )
    parser.add_argument(
        "--catalog",
        default="default",
        help="default, idr, or module:function returning a Catalog",
    )
    parser.add_argument(
        "--scale", type=float, default=0.001, help="size of the idr catalog (0..1]"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every reply by this"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=600.0, help="session idle timeout, s"
    )
    parser.add_argument("--router", choices=("builtin", "glacier2"), default="builtin")
    parser.add_argument("--threads", type=int, default=4, help="Ice server threads")
    return parser.parse_args(argv)


def build_catalog(name: str, scale: float) -> Catalog:
    """The catalog called ``name``.

    ``default``, ``idr`` (at ``scale``), or ``module:function`` naming a
    function without arguments that returns a :class:`Catalog`. Raises
    ValueError for anything else.
    """
    catalog: Catalog
    if name == "default":
        return default_catalog()
    if name == "idr":
        # Imported on demand: only this catalog needs the IDR's study table.
        from aiomero.testing.idr import idr_catalog

        return idr_catalog(scale)
    module, _, function = name.partition(":")
    if not module or not function:
        raise ValueError(
            f"unknown catalog {name!r}: give default, idr or module:function"
        )
    try:
        make = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"catalog {name!r}: {exc}") from None
    catalog = make()
    if not isinstance(catalog, Catalog):
        raise ValueError(f"{name} returned {type(catalog).__name__}, not a Catalog")
    return catalog


def _check_listen(host: str, port: int, option: str) -> None:
    """Raise ValueError unless a server can listen on ``host`` at ``port``."""
    if not host.strip():
        raise ValueError("--host must not be empty")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ValueError(f"--host {host!r}: {reason}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            in_use = port and exc.errno == errno.EADDRINUSE
            where = f"{option} {port}" if in_use else f"--host {host!r}"
            raise ValueError(f"{where}: {exc.strerror or exc}") from None


def open_emulator(args: argparse.Namespace) -> Emulator:
    """The emulator ``args`` (from :func:`parse_args`) describe, started.

    Raises ValueError, with a one-line message naming the option, for a
    catalog, scale, address or port that cannot be used.
    """
    import Ice

    _check_listen(args.host, args.port, "--port")
    if args.insecure_port:
        _check_listen(args.host, args.insecure_port, "--insecure-port")
    latency = args.latency_ms / 1000 if args.latency_ms > 0 else None
    emulator = Emulator(
        catalog=build_catalog(args.catalog, args.scale),
        host=args.host,
        port=args.port,
        insecure_port=args.insecure_port or 0,
        idle_timeout=args.idle_timeout,
        router=args.router,
        latency=latency,
        threads=args.threads,
    )
    try:
        emulator.start()
    except Ice.LocalException as exc:
        raise ValueError(
            f"cannot listen on {args.host}: {type(exc).__name__}"
        ) from None
    return emulator


def describe(emulator: Emulator, out: TextIO) -> None:
    """Print how to connect to ``emulator`` and who may log in."""
    print(f"OMERO emulator on {emulator.host}", file=out)
    print(f"  SSL (logins):        port {emulator.port}", file=out)
    print(f"  TCP (secure=False):  port {emulator.insecure_port}", file=out)
    print(f"  router:              {emulator.router}", file=out)
    print("Connect with:", file=out)
    print(
        "  BlitzGateway('root', 'omero', "
        f"host='{emulator.host}', port={emulator.port}).connect()",
        file=out,
    )
    print("Users (name, password, groups):", file=out)
    for user in emulator.catalog.users:
        groups = ", ".join(emulator.catalog.group(g).name for g in user.group_ids)
        state = "" if user.active else "  (inactive)"
        print(f"  {user.name:<12} {user.password:<14} {groups}{state}", file=out)


def serve(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the emulator the command line describes until SIGINT or SIGTERM.

    Returns the process exit status: 0 after an interruption, 2 (with one
    line on stderr) when the emulator cannot start as described.
    """
    args = parse_args(argv)
    try:
        emulator = open_emulator(args)
    except ValueError as exc:
        print(f"python -m aiomero.testing: error: {exc}", file=sys.stderr)
        return 2
    return serve_until_stopped(emulator, out)


def serve_until_stopped(emulator: Emulator, out: TextIO | None = None) -> int:
    """Describe the started ``emulator`` on ``out``, serve until SIGINT or
    SIGTERM, then stop it; the exit status, 0."""
    out = out or sys.stdout
    stop = threading.Event()

    def interrupted(signum: int, frame: Any) -> None:
        stop.set()

    previous = {
        s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        describe(emulator, out)
        print(
            f"{READY_PREFIX} host={emulator.host} port={emulator.port} "
            f"insecure_port={emulator.insecure_port}",
            file=out,
            flush=True,
        )
        # A bounded wait keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("OMERO emulator stopped", file=out, flush=True)
    return 0
