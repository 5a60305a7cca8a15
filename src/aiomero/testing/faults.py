"""Faults a test injects into a running emulator, and what each call meets.

A test reaches them as ``emulator.faults``. Latency, stalls and failures act
on remote operations by their Slice name (``findAllByQuery``,
``getEventContext``, ``createSession`` for a login or join, ...), or on every
operation when no name is given. Connection faults (refusing, dropping) and
session expiry are carried out by the emulator that owns this object.

Every fault stays until it is undone or :meth:`Faults.reset` is called; the
pytest fixture resets them between tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import omero

__all__ = ["Faults", "Plan", "Stall"]

Latency = float | tuple[float, float]


class _Owner(Protocol):
    def _set_refusing(self, refusing: bool) -> None: ...
    def _drop_connections(self) -> int: ...
    def _expire_session(self, key: str) -> None: ...


class Stall:
    """Calls that arrive while a stall is active are accepted and not answered.

    Each held call gets its reply once the stall is released: by
    :meth:`release`, by leaving its ``with`` block, or when its duration runs
    out. Calls that arrive after the release are answered as usual.
    """

    def __init__(self, op: str | None, seconds: float | None) -> None:
        self.op = op
        self._lock = threading.Condition()
        self._held: list[Callable[[], None]] = []
        self._released = False
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._total = 0
        self._timer: threading.Timer | None = None
        if seconds is not None:
            # Held calls must be answered on time even if no other call comes.
            self._timer = threading.Timer(seconds, self.release)
            self._timer.daemon = True
            self._timer.start()

    @property
    def active(self) -> bool:
        """Whether new calls are still being held."""
        if self._released:
            return False
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.release()
            return False
        return True

    @property
    def held(self) -> int:
        """How many calls were held by this stall so far, released or not."""
        with self._lock:
            return self._total

    def wait_held(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until ``count`` calls have been held; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._total >= count, timeout)

    def release(self) -> None:
        """Answer every held call now and stop holding new ones."""
        with self._lock:
            self._released = True
            held, self._held = self._held, []
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        for reply in held:
            reply()

    def _hold(self, reply: Callable[[], None]) -> bool:
        with self._lock:
            if self._released:
                return False
            self._held.append(reply)
            self._total += 1
            self._lock.notify_all()
            return True

    def __enter__(self) -> Stall:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class Plan:
    """What the faults decided for one call: a delay, a stall, an error."""

    delay: float = 0.0
    stall: Stall | None = None
    error: BaseException | None = None


class Faults:
    """The faults in force on one emulator; see the module docstring."""

    def __init__(self, owner: _Owner) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._latency: dict[str | None, Latency] = {}
        self._stalls: list[Stall] = []
        self._failures: dict[str | None, list[Any]] = {}
        self._random = random.Random()
        # Read without the lock on every call: the fast path when nothing is set.
        self.armed = False

    # -- latency -------------------------------------------------------------

    def set_latency(self, seconds: Latency, op: str | None = None) -> None:
        """Delay the replies of ``op`` (or of every operation) by ``seconds``.

        A pair ``(low, high)`` draws each delay uniformly from that range. An
        operation's own latency replaces the one for every operation. The
        delay is spent on a timer, so delayed calls hold no server thread.
        """
        low, high = seconds if isinstance(seconds, tuple) else (seconds, seconds)
        if low < 0 or high < low:
            raise ValueError(f"bad latency {seconds!r}")
        with self._lock:
            self._latency[op] = seconds
            self._rearm()

    def clear_latency(self, op: str | None = None) -> None:
        """Remove the latency set for ``op`` (or the one for every operation)."""
        with self._lock:
            self._latency.pop(op, None)
            self._rearm()

    # -- stalls --------------------------------------------------------------

    def stall(self, op: str | None = None, seconds: float | None = None) -> Stall:
        """Hold calls of ``op`` (or of every operation) without answering.

        The stall lasts until released, or ``seconds`` if given; use it as a
        context manager to release it on leaving the block. Held calls are
        answered normally, late, once it ends.
        """
        stall = Stall(op, seconds)
        with self._lock:
            self._stalls.append(stall)
            self._rearm()
        return stall

    # -- failures ------------------------------------------------------------

    def fail_next(
        self,
        op: str | None,
        count: int = 1,
        error: BaseException | type[BaseException] | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``op`` (or of any operation) fail.

        ``error`` is raised to the client instead of running the call
        (default: ``omero.InternalException``); an exception class is
        instantiated per call. An error the operation does not declare
        reaches the client as ``Ice.UnknownUserException``, as from a real
        server.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        made = error if error is not None else _internal_error
        with self._lock:
            self._failures.setdefault(op, []).extend([made] * count)
            self._rearm()

    # -- connections and sessions -------------------------------------------

    def refuse_connections(self) -> None:
        """Turn away new connections; those already open keep working.

        With the built-in router a new connection is closed as soon as it
        sends its first request, so a login raises a connection error in the
        client. Behind ``glacier2router`` the router still accepts
        connections, and each login is refused with
        ``Glacier2.CannotCreateSessionException``.
        """
        self._owner._set_refusing(True)

    def accept_connections(self) -> None:
        """Undo :meth:`refuse_connections`."""
        self._owner._set_refusing(False)

    def drop_connections(self) -> int:
        """Close every open client connection now; return how many.

        Sessions survive, as on a real server whose network failed: a client
        that reconnects can join its session again by key. Behind
        ``glacier2router`` the router is restarted on the same ports.
        """
        return self._owner._drop_connections()

    def expire_session(self, key: str) -> None:
        """Make session ``key`` time out now; its next call raises
        ``omero.SessionTimeoutException``. Raises KeyError for an unknown
        key."""
        self._owner._expire_session(key)

    def reset(self) -> None:
        """Remove every latency, stall and pending failure, accept connections.

        Stalled calls are answered.
        """
        with self._lock:
            stalls, self._stalls = self._stalls, []
            self._latency.clear()
            self._failures.clear()
            self._rearm()
        for stall in stalls:
            stall.release()
        self._owner._set_refusing(False)

    # -- used by the dispatcher ---------------------------------------------

    def plan(self, op: str) -> Plan | None:
        """Decide the delay, stall or error for one call of ``op``."""
        with self._lock:
            error = self._take_failure(op)
            stall = self._find_stall(op)
            latency = self._latency.get(op, self._latency.get(None))
        delay = self._draw(latency)
        if error is None and stall is None and delay == 0.0:
            return None
        return Plan(delay=delay, stall=stall, error=error)

    def _take_failure(self, op: str) -> BaseException | None:
        for key in (op, None):
            queue = self._failures.get(key)
            if queue:
                made = queue.pop(0)
                if not queue:
                    del self._failures[key]
                    self._rearm()
                return made() if callable(made) else made  # type: ignore[no-any-return]
        return None

    def _find_stall(self, op: str) -> Stall | None:
        live = [s for s in self._stalls if s.active]
        if len(live) != len(self._stalls):
            self._stalls = live
            self._rearm()
        return next((s for s in live if s.op is None or s.op == op), None)

    def _draw(self, latency: Latency | None) -> float:
        if latency is None:
            return 0.0
        if isinstance(latency, tuple):
            return self._random.uniform(*latency)
        return float(latency)

    def _rearm(self) -> None:
        self.armed = bool(self._latency or self._stalls or self._failures)


def _internal_error() -> BaseException:
    error: BaseException = omero.InternalException(
        message="failure injected by the OMERO emulator"
    )
    return error
