"""A client process for the leak tests: ``python reliability_child.py MODE JSON``.

The emulator runs in the test process; this process holds only the client,
so its thread count, descriptors and memory are the client's alone. Modes:

``cycles``
    connect, one call, close, ``cycles`` times after ``warmup`` rounds;
    prints the figures before and after as one JSON line.
``failures``
    the same for failed connects (refused port, wrong password, silent
    port), timed-out calls and cancelled calls.
``forget``
    connects and never closes; ``how`` is ``keep`` (referenced until the
    interpreter exits), ``drop`` (garbage-collected while the loop runs) or
    ``stalled`` (a call still waiting for the server at exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from typing import Any

from aiomero.errors import AiomeroError
from aiomero.gateway import AsyncGateway
from reliability_support import (
    free_port,
    open_fds,
    os_threads,
    rss_kib,
    settle,
    silent_server,
)

_kept: list[Any] = []


def _gateway(args: dict[str, Any], **options: Any) -> AsyncGateway:
    options = {
        "host": args["host"],
        "port": args["port"],
        "passwd": args["password"],
        "secure": args.get("secure", False),
        **options,
    }
    return AsyncGateway(args["user"], **options)


async def _figures(baseline: dict[str, int] | None = None) -> dict[str, int]:
    # Threads and descriptors of a closed gateway go a moment after close().
    gc.collect()
    if baseline is not None:
        await settle(baseline["threads"], os_threads)
        await settle(baseline["fds"], open_fds)
    return {"threads": os_threads(), "fds": open_fds(), "rss_kib": rss_kib()}


async def _cycle(args: dict[str, Any]) -> None:
    gateway = _gateway(args)
    await gateway.connect()
    await gateway.getUser()
    await gateway.close()


async def _measure(args: dict[str, Any], rounds: Any) -> None:
    for _ in range(args.get("warmup", 20)):
        await rounds(args, warm=True)
    before = await _figures()
    started = time.monotonic()
    for _ in range(args["cycles"]):
        await rounds(args, warm=False)
    seconds = time.monotonic() - started
    after = await _figures(before)
    print(json.dumps({"before": before, "after": after, "seconds": seconds}))


async def _cycles(args: dict[str, Any], warm: bool) -> None:
    await _cycle(args)


async def _failures(args: dict[str, Any], warm: bool) -> None:
    # Each round: one refused port, one wrong password, one silent port, one
    # call past its deadline and one cancelled call, each freed afterwards.
    refused = _gateway(args, port=free_port())
    with contextlib.suppress(AiomeroError):
        await refused.connect()
    wrong = _gateway(args, passwd="wrong-password")
    with contextlib.suppress(AiomeroError):
        await wrong.connect()
    with silent_server() as port:
        silent = _gateway(args, port=port, connect_timeout=0.05)
        with contextlib.suppress(AiomeroError):
            await silent.connect()
    gateway = _gateway(args)
    await gateway.connect()
    with contextlib.suppress(AiomeroError):
        await gateway.getAdministrators(timeout=0.05)  # the test delays it
    call = asyncio.create_task(gateway.getAdministrators())
    await asyncio.sleep(0.01)
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    await gateway.close()


async def _forget(args: dict[str, Any]) -> None:
    gateway = _gateway(args)
    await gateway.connect()
    await gateway.getUser()
    if args["how"] == "drop":
        del gateway
        gc.collect()
        await asyncio.sleep(0.1)
        print("dropped", flush=True)
        return
    _kept.append(gateway)
    if args["how"] == "stalled":
        # The test stalls this call on the server; asyncio.run cancels it.
        asyncio.get_running_loop().create_task(gateway.listProjects(timeout=None))
        await asyncio.sleep(0.5)
    print("leaving", flush=True)


def main() -> None:
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    if mode == "cycles":
        asyncio.run(_measure(args, _cycles))
    elif mode == "failures":
        asyncio.run(_measure(args, _failures))
    elif mode == "forget":
        asyncio.run(_forget(args))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
