"""The dedicated worker thread on which one session's blocking calls run.

One thread per session keeps the calls of a session in order and keeps the
blocking client's per-connection state (its group context, its cached service
proxies) away from every other thread. A ``queue.SimpleQueue`` feeds it, and
results go back to the event loop with ``call_soon_threadsafe``: measured here,
that is the cheapest way to leave the event loop and come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SessionThread"]

T = TypeVar("T")

_STOP = object()


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    # The awaiting task may have given up (timeout, cancellation) meanwhile.
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SessionThread:
    """A thread that runs submitted callables one after another.

    ``submit`` returns an asyncio future of the running loop. Cancelling that
    future before the thread picks the call up means the call never runs;
    cancelling it later cannot stop the blocking call, which finishes (or hits
    its own Ice deadline) on the thread while the caller moves on.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._busy = threading.Event()
        self._stopped = False

    @property
    def name(self) -> str:
        return self._thread.name

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def busy(self) -> bool:
        """Whether a call is running on the thread right now."""
        return self._busy.is_set()

    def submit(
        self, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> asyncio.Future[T]:
        """Queue ``fn(*args, **kwargs)`` and return a future for its result.

        The call runs in a copy of the caller's context, so context variables
        set by the caller (a task's group, say) are visible to it.
        """
        if self._stopped:
            raise RuntimeError(f"session thread {self.name} is stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        ctx = contextvars.copy_context()
        self._queue.put((future, loop, ctx, fn, args, kwargs))
        return future

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the thread from outside any event loop and wait.

        For finalizers and synchronous clean-up only.
        """
        done = threading.Event()
        box: list[Any] = []

        def wrapper() -> None:
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:
                box.append((False, exc))
            finally:
                done.set()

        self._queue.put(wrapper)
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def stop(self, join_timeout: float | None = None) -> bool:
        """Let queued calls finish, end the thread, and wait up to the timeout.

        Returns whether the thread ended within it.
        """
        if not self._stopped:
            self._stopped = True
            self._queue.put(_STOP)
        if self._thread.ident is None or self._thread is threading.current_thread():
            return True
        self._thread.join(join_timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            if callable(item):
                item()
                continue
            future, loop, ctx, fn, args, kwargs = item
            # A caller that already gave up must not have its call run late.
            if future.done():
                continue
            self._busy.set()
            try:
                result = ctx.run(fn, *args, **kwargs)
            except BaseException as exc:
                ok, value = False, exc
            else:
                ok, value = True, result
            finally:
                self._busy.clear()
            # The loop may have closed while the call ran; nobody waits then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, ok, value)
            del future, ctx, fn, args, kwargs, value, item

    def submit_nowait(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` with nobody waiting; its errors are dropped."""

        def quiet() -> None:
            with contextlib.suppress(BaseException):
                fn(*args)

        if self._thread.is_alive():
            self._queue.put(quiet)
