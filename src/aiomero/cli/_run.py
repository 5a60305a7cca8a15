"""Running a command's coroutine: interrupts, and the grace they get.

The first SIGINT (Ctrl-C) or SIGTERM cancels the command, which then has
:data:`GRACE` seconds to close its sessions and files; past that, or at a
second signal, the process exits at once. Either way the exit status is 130.
Output already committed is safe: it is flushed as it is written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._connect import EXIT_INTERRUPTED

__all__ = ["GRACE", "Interrupted", "run_command"]

T = TypeVar("T")

#: Seconds an interrupted command may take to close before it is cut short.
GRACE = 5.0


class Interrupted(Exception):
    """The command was stopped by SIGINT or SIGTERM."""


def _hard_exit(reason: str) -> None:
    sys.stderr.write(f"\n{reason}: exiting now\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def run_command(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` in a new event loop; raise :class:`Interrupted` if a
    signal stopped it."""
    return asyncio.run(_supervise(main))


async def _supervise(main: Callable[[], Awaitable[T]]) -> T:
    loop = asyncio.get_running_loop()
    work = asyncio.ensure_future(main())
    interrupted = False

    def stop() -> None:
        nonlocal interrupted
        if interrupted:
            _hard_exit("interrupted again")
        interrupted = True
        sys.stderr.write("\ninterrupted: stopping\n")
        work.cancel()
        loop.call_later(GRACE, _hard_exit, f"not closed after {GRACE:g} s")

    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop)
    try:
        result = await work
    except asyncio.CancelledError:
        if interrupted:
            raise Interrupted from None
        raise
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
    if interrupted:
        # The command stopped early but did not say so.
        raise Interrupted
    return result
