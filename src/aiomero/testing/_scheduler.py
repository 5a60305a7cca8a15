"""One timer thread that runs callables later, for delayed replies.

Injected latency must not hold an Ice dispatch thread per call: a delayed
reply is a callable queued here, and a single thread runs each when its time
comes. The callables are short (they hand a finished reply to Ice), so one
thread keeps up with thousands of calls in flight.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from aiomero._logging import get_logger

__all__ = ["Scheduler"]

logger = get_logger()


class Scheduler:
    """Runs callables after a delay on one daemon thread.

    The thread starts with the first :meth:`call_later` and ends with
    :meth:`close`; callables still waiting then are dropped.
    """

    def __init__(self, name: str = "aiomero-emulator-timer") -> None:
        self._name = name
        self._queue: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the timer thread ``delay`` seconds from now.

        Does nothing once the scheduler is closed.
        """
        due = time.monotonic() + max(delay, 0.0)
        with self._wakeup:
            if self._closed:
                return
            order = next(self._order)
            heapq.heappush(self._queue, (due, order, fn, args))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self._name, daemon=True
                )
                self._thread.start()
            # Only an entry that became the earliest changes how long to sleep.
            if self._queue[0][1] == order:
                self._wakeup.notify()

    def close(self) -> None:
        """Stop the thread and drop whatever is still waiting."""
        with self._wakeup:
            self._closed = True
            self._queue.clear()
            self._wakeup.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._closed:
                    if not self._queue:
                        self._wakeup.wait()
                        continue
                    wait = self._queue[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._wakeup.wait(wait)
                if self._closed:
                    return
                _, _, fn, args = heapq.heappop(self._queue)

            # Outside the lock: a slow callable must not block new entries.
            try:
                fn(*args)
            except Exception as exc:
                logger.warning("emulator_timer_callback_failed", error=repr(exc))
