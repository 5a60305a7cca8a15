"""AsyncGatewayPool: OMERO sessions shared by many tasks.

The pool logs in a few sessions, lends them one task at a time through
``async with pool.acquire() as gw``, keeps the idle ones alive below the
server's idle timeout, and replaces those that die. Background work (making
a session, keeping the idle ones alive, shrinking) runs in named tasks, so
the public methods stay short and a traceback says which job failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import random
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Literal

from . import _compat
from . import _pool_base as base
from ._logging import get_logger
from ._pool_base import Member, Share, check_count, jittered
from ._pool_connect import SessionMaker
from ._translate import error_text
from .errors import (
    AiomeroError,
    CallTimeoutError,
    ConnectionLostError,
    PoolBusyError,
    PoolClosedError,
    PoolTimeout,
    ServerUnreachableError,
)
from .gateway import AsyncGateway
from .settings import check_group, check_seconds, check_timeout

__all__ = ["AsyncGatewayPool"]

_UNSET: Any = object()
_names = itertools.count(1)

# A share of a substituted user starts empty and grows on demand.
_SUDO_MIN = 0
# A session idle for longer than this is pinged before it is lent, when the
# acquire check is left to the pool (``check=None``).
_CHECK_AFTER_IDLE = 10.0
# How often the maintenance task looks at the idle sessions, at most.
_MAX_TICK = 1.0
# Backoff between attempts to make a session while the server is away.
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 10.0
# The longest pause after an attempt that failed for good (refused
# credentials, a configure hook that raised), so that the pool never
# storms the server with logins.
_PAUSE_MAX = 60.0
# Errors after which another attempt, soon, may well succeed.
_TRANSIENT = (ServerUnreachableError, ConnectionLostError, CallTimeoutError)

Hook = Callable[[AsyncGateway], Awaitable[None]]


class AsyncGatewayPool:
    """A pool of OMERO sessions for many tasks.

    Takes the connection arguments of :class:`AsyncGateway` (``username``,
    ``passwd``, ``host``, ``port``, ``secure``, ``group`` and the gateway's
    keyword options), or ``factory``, a callable returning a new, not yet
    connected gateway. Arguments are checked here, before any network call.

    ``min_size`` sessions are kept open, up to ``max_size`` are made on
    demand. ``timeout`` bounds :meth:`acquire`'s wait (``PoolTimeout``);
    beyond ``max_waiting`` waiting tasks (0: no cap) an acquire fails at once
    with ``PoolBusyError``. Sessions idle for ``max_idle`` seconds above the
    minimum are closed, and every session is renewed after ``max_lifetime``
    seconds (less up to 5 % at random). ``keepalive_interval`` is the
    period of the keep-alive of idle sessions: ``"auto"`` for a third of the
    idle timeout the server reports, a number of seconds, or None for none.
    ``check`` pings a session before lending it: True always, False never,
    None (default) after an idle gap. A session that dies is replaced in the
    background, with exponential backoff, for up to ``reconnect_timeout``
    seconds; then ``reconnect_failed(pool)`` is called. After a failure that
    retrying cannot mend (refused credentials, a ``configure`` that raised),
    the pool pauses before the next attempt, longer each time, up to a
    minute. ``configure(gw)`` runs on each new session before it is first
    lent; the state it leaves (a default group, say) is what each loan
    starts from.

    ``join_sessions=True`` logs in once and opens the other connections by
    joining that session: they share its group, its expiry and its server
    resources, so group context travels per call only and
    ``setGroupForSession`` is refused on them. ``sudo_ttl`` is the time to
    live, in seconds, of the sessions made for ``acquire(user=...)``.
    """

    def __init__(
        self,
        username: str | None = None,
        passwd: str | None = None,
        host: str = "localhost",
        port: int = 4064,
        secure: bool = False,
        group: int | str | None = None,
        *,
        factory: Callable[[], AsyncGateway] | None = None,
        min_size: int = 1,
        max_size: int | None = None,
        timeout: float = 30.0,
        max_waiting: int = 0,
        max_idle: float = 600.0,
        max_lifetime: float = 3600.0,
        check: bool | None = None,
        keepalive_interval: float | Literal["auto"] | None = "auto",
        reconnect_timeout: float = 300.0,
        reconnect_failed: Callable[[AsyncGatewayPool], None] | None = None,
        configure: Hook | None = None,
        join_sessions: bool = False,
        sudo_ttl: float = 600.0,
        name: str | None = None,
        **gateway_options: Any,
    ) -> None:
        if factory is None:

            def factory() -> AsyncGateway:
                return AsyncGateway(
                    username, passwd, host, port, secure, group, **gateway_options
                )

        elif gateway_options or (username, passwd, host, port, secure, group) != (
            None, None, "localhost", 4064, False, None
        ):  # fmt: skip
            raise TypeError("factory: give either a factory or connection arguments")
        if not callable(factory):
            raise TypeError(f"factory must be callable, not {type(factory).__name__}")

        self.min_size = check_count(min_size, "min_size", 0)
        self.max_size = check_count(
            max(min_size, 8) if max_size is None else max_size, "max_size", 1
        )
        if self.max_size < self.min_size:
            raise ValueError(
                f"max_size ({self.max_size}) is less than min_size ({self.min_size})"
            )
        self.timeout = check_seconds(timeout, "timeout")
        self.max_waiting = check_count(max_waiting, "max_waiting", 0)
        self.max_idle = check_seconds(max_idle, "max_idle")
        self.max_lifetime = check_seconds(max_lifetime, "max_lifetime")
        if check is not None and not isinstance(check, bool):
            raise TypeError(f"check must be a bool or None, not {type(check).__name__}")
        self.check = check
        if keepalive_interval != "auto":
            keepalive_interval = check_timeout(keepalive_interval, "keepalive_interval")
        self.reconnect_timeout = check_seconds(reconnect_timeout, "reconnect_timeout")
        for hook, field in (
            (reconnect_failed, "reconnect_failed"),
            (configure, "configure"),
        ):
            if hook is not None and not callable(hook):
                raise TypeError(f"{field} must be callable, not {type(hook).__name__}")
        self._reconnect_failed = reconnect_failed
        self._configure = configure
        if not isinstance(join_sessions, bool):
            raise TypeError("join_sessions must be a bool")
        self.join_sessions = join_sessions
        self.sudo_ttl = check_seconds(sudo_ttl, "sudo_ttl")
        if self.sudo_ttl < 1:
            raise ValueError(f"sudo_ttl must be at least 1 second, not {sudo_ttl!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        self.name = name or f"pool-{next(_names)}"
        self._maker = SessionMaker(
            factory, join=join_sessions, keepalive=keepalive_interval
        )

        self._own = Share(None, self.min_size, self.max_size)
        self._sudo: dict[str, Share] = {}
        self._stats = dict.fromkeys(base.COUNTERS, 0)
        self._tasks: set[asyncio.Task[Any]] = set()
        # Background tasks that close() may cancel: maintenance, keep-alives
        # and checks. Closing and making sessions run to their end, within
        # the close timeout, so that no session is left half-made.
        self._cancellable: set[asyncio.Task[Any]] = set()
        self._opened = False
        self._opening: asyncio.Future[None] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self._last_error: BaseException | None = None
        self._returned = asyncio.Event()
        self._closing = asyncio.Event()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._opened else "not open"
        return (
            f"<AsyncGatewayPool {self.name!r} {state} size={self._own.size} "
            f"idle={len(self._own.idle)}>"
        )

    @property
    def keepalive_interval(self) -> float | None:
        """The keep-alive period in use, known once the pool is open."""
        return self._maker.keepalive

    def _log(self) -> Any:
        return get_logger()

    # -- opening and closing --------------------------------------------------

    async def open(self, wait: bool = True, timeout: float | None = None) -> None:
        """Open the pool: log in, then start the background maintenance.

        With ``wait`` the first session is made here, so a bad password or an
        unreachable server raises its own error (``AuthenticationError``,
        ``ServerUnreachableError``), and so are the rest up to ``min_size``,
        within ``timeout`` (``PoolTimeout``). Opening an open pool does
        nothing, and a second ``open`` while one runs waits for it and shares
        its outcome; a closed pool cannot be opened again. Cancelling it, or a
        failure, closes what it opened.
        """
        if self._closed:
            raise PoolClosedError(f"{self!r} is closed; make a new pool")
        if self._opening is not None:
            await asyncio.shield(self._opening)
            return
        self._loop = asyncio.get_running_loop()
        self._pid = os.getpid()
        self._opening = self._loop.create_future()
        self._opened = True
        try:
            if wait and self.min_size:
                async with _compat.timeout(timeout):
                    self._hand(await self._new_member(self._own))
                    await asyncio.gather(*self._first_sessions())
        except BaseException as exc:
            error = exc
            if isinstance(exc, _compat.TIMEOUT_ERRORS) and not isinstance(
                exc, AiomeroError
            ):
                error = PoolTimeout(f"{self.name}: not open within {timeout} s")
            self._opening.set_exception(error)
            # Retrieved here, so that no one awaiting it is not a warning.
            self._opening.exception()
            await self.close(timeout=0)
            if error is exc:
                raise
            raise error from None
        self._opening.set_result(None)
        self._spawn(_maintain(weakref.ref(self)), "maintain", cancellable=True)
        self._log().info(
            "pool_opened", pool=self.name, min_size=self.min_size,
            max_size=self.max_size, keepalive_interval=self._maker.keepalive,
            joined=self.join_sessions,
        )  # fmt: skip

    def _first_sessions(self) -> list[Coroutine[Any, Any, None]]:
        async def one() -> None:
            # Borrowers may have made the pool grow meanwhile.
            if self._own.size < self._own.max_size:
                self._hand(await self._new_member(self._own))

        return [one() for _ in range(self.min_size - 1)]

    async def close(self, timeout: float | None = 10.0) -> None:
        """Close the pool and every session in it, within ``timeout``.

        Tasks waiting for a session get ``PoolClosedError``. Sessions still
        lent out are waited for, then closed under their borrowers (whose
        calls then fail) with a ``ResourceWarning``; sessions being made are
        closed once made, and whatever is still running when the timeout
        ends is cut short. Idempotent. Cancelling it cuts everything short at
        once: the sessions are freed locally, and the server ends them at its
        idle timeout.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)

        # Nothing new starts: maintenance stops and waiters are told.
        for task in list(self._cancellable):
            task.cancel()
        for share in self._shares():
            self._fail_waiters(share, PoolClosedError(f"{self.name} was closed"))
        try:
            await self._wait_returned(deadline)
        except asyncio.CancelledError:
            await self._close_all(time.monotonic())
            raise
        await self._close_all(deadline)

    async def _wait_returned(self, deadline: float | None) -> None:
        # Borrowers get until the deadline to give their sessions back.
        with contextlib.suppress(*_compat.TIMEOUT_ERRORS):
            async with _compat.timeout(_remaining(deadline)):
                while any(share.lent for share in self._shares()):
                    self._returned.clear()
                    await self._returned.wait()
        out = sum(len(share.lent) for share in self._shares())
        if out:
            warnings.warn(
                f"{self!r} closed with {out} session(s) still lent out",
                ResourceWarning,
                stacklevel=3,
            )

    async def _close_all(self, deadline: float | None) -> None:
        # Sessions under a check or a keep-alive are closed too: the tasks
        # doing those were cancelled.
        members = [
            m
            for share in self._shares()
            for m in (*share.idle, *share.lent, *share.checking)
        ]
        for share in self._shares():
            share.size -= len(share.idle) + len(share.lent) + len(share.checking)
            share.idle.clear()
            share.lent.clear()
            share.checking.clear()
        # A shared session is ended once, by the last of its connections.
        joined = [m for m in members if m.gateway._group_locked is not None]
        last = joined[-1] if joined else None
        await asyncio.gather(
            *(self._close_member(m, last=m is last, deadline=deadline) for m in members)
        )

        # Sessions being made finish and are closed by the task that made
        # them; what runs past the deadline is cut short.
        while self._tasks:
            tasks = list(self._tasks)
            _, late = await asyncio.wait(tasks, timeout=_remaining(deadline))
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._log().info("pool_closed", pool=self.name, closed=len(members))

    async def __aenter__(self) -> AsyncGatewayPool:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __del__(self) -> None:
        if getattr(self, "_opened", False) and not self._closed:
            warnings.warn(
                f"{self!r} was not closed; use 'async with' or await close()",
                ResourceWarning,
                stacklevel=2,
            )

    # -- lending ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def acquire(
        self,
        group: int | str | None = None,
        *,
        user: str | None = None,
        timeout: float | None = _UNSET,
    ) -> AsyncIterator[AsyncGateway]:
        """Borrow a connected gateway for the block.

        ``group`` is the default group of the gateway's calls during the
        block (``-1``: every group of the user); the session's own group is
        never switched for it. ``user`` lends a session of that user, made by
        this pool's administrator session (``PermissionDeniedError`` if it is
        not one). Waits up to ``timeout`` (default: the pool's), check of the
        session included, and raises ``PoolTimeout``, or ``PoolBusyError`` at
        once when too many tasks wait. The session goes back when the block
        ends, whatever ends it; a task cancelled while waiting or holding
        never loses a session.
        """
        chosen = check_group(group)
        if user is not None:
            if not isinstance(user, str):
                raise TypeError(f"user must be a str, not {type(user).__name__}")
            if not user or user != user.strip():
                raise ValueError(f"user: {user!r} is not a user name")
        wait = self.timeout if timeout is _UNSET else check_timeout(timeout, "timeout")
        self._check_usable()
        share = self._own if user is None else self._sudo_share(user)

        member = await self._get(share, wait)
        gateway = member.gateway
        if chosen is not None:
            gateway._default_group = chosen
        try:
            yield gateway
        finally:
            self._return(member)

    def _check_usable(self) -> None:
        if self._closed or not self._opened:
            raise PoolClosedError(f"{self!r} is not open")
        if os.getpid() != self._pid:
            raise RuntimeError(
                f"{self!r} was opened in process {self._pid} and used in "
                f"{os.getpid()}: open a pool in each worker process"
            )
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                f"{self!r} belongs to the event loop it was opened on; "
                "open a pool per event loop"
            )

    def _sudo_share(self, user: str) -> Share:
        share = self._sudo.get(user)
        if share is None:
            share = self._sudo[user] = Share(user, _SUDO_MIN, self.max_size)
        return share

    async def _get(
        self, share: Share, wait: float | None, count: bool = True
    ) -> Member:
        if count:
            self._stats[base.REQUESTS_NUM] += 1
        deadline = None if wait is None else time.monotonic() + wait
        started = time.monotonic()
        try:
            while True:
                member = await self._next(share, deadline, wait)
                # A session found dead on the way is replaced; wait again.
                if await self._fit_to_lend(member, deadline):
                    break
        finally:
            self._stats[base.REQUESTS_WAIT_MS] += int(
                (time.monotonic() - started) * 1000
            )
        if self._closed:
            self._hand(member)
            raise PoolClosedError(f"{self.name} was closed")
        return self._lend(member)

    async def _next(
        self, share: Share, deadline: float | None, wait: float | None
    ) -> Member:
        """The next session of ``share``: an idle one, or the first given
        back or made while this task waits."""
        # An idle session goes at once, the most recently used first, so
        # that sessions beyond the minimum stay idle and can be closed.
        if share.idle:
            return share.idle.pop()

        if self.max_waiting and share.pending_waiters() >= self.max_waiting:
            self._stats[base.REQUESTS_ERRORS] += 1
            self._log().warning(
                "pool_exhausted", pool=self.name, reason="too many waiting",
                **share.describe(),
            )  # fmt: skip
            raise PoolBusyError(
                f"{self.name}: {self.max_waiting} tasks already wait for a session"
            )

        # Queue, first come first served, and grow if the share may.
        waiter: asyncio.Future[Member] = asyncio.get_running_loop().create_future()
        share.waiting.append(waiter)
        self._stats[base.REQUESTS_QUEUED] += 1
        self._grow_for_waiters(share)
        try:
            async with _compat.timeout(_remaining(deadline)):
                return await waiter
        except BaseException as exc:
            # A session handed over just as the wait ended is not lost.
            if waiter.done() and not waiter.cancelled() and not waiter.exception():
                self._hand(waiter.result())
            with contextlib.suppress(ValueError):
                share.waiting.remove(waiter)
            if isinstance(exc, _compat.TIMEOUT_ERRORS) and not isinstance(
                exc, AiomeroError
            ):
                raise self._timed_out(share, wait) from self._last_error
            if isinstance(exc, AiomeroError):
                self._stats[base.REQUESTS_ERRORS] += 1
            raise

    def _grow_for_waiters(self, share: Share) -> None:
        # Sessions under a check come back soon: only the shortfall grows,
        # and nothing while the share pauses after a failure.
        coming = share.growing + len(share.checking)
        if (
            share.size < share.max_size
            and coming < share.pending_waiters()
            and time.monotonic() >= share.pause_until
        ):
            self._grow(share)

    def _timed_out(self, share: Share, wait: float | None) -> PoolTimeout:
        self._stats[base.REQUESTS_ERRORS] += 1
        self._log().warning(
            "pool_exhausted", pool=self.name, reason="timeout", timeout=wait,
            **share.describe(),
        )  # fmt: skip
        why = ""
        if self._last_error is not None:
            why = f"; the last attempt to open one failed: {self._last_error}"
        return PoolTimeout(f"{self.name}: no session within {wait} s{why}")

    def _lend(self, member: Member) -> Member:
        member.share.lent.add(member)
        member.abandoned_at_lend = member.gateway._abandoned_calls
        member.runs_at_lend = member.gateway._runs
        return member

    async def _fit_to_lend(self, member: Member, deadline: float | None) -> bool:
        """Whether a session may be lent, pinging it when due."""
        now = time.monotonic()
        if now >= member.expires:
            self._discard(member, "lifetime", replace=False)
            return False
        check = self.check
        if check is None:
            check = now - member.last_contact > _CHECK_AFTER_IDLE
        if not check:
            return True
        limit = min(5.0, self.timeout)
        left = _remaining(deadline)
        if left is not None:
            limit = max(0.01, min(limit, left))
        try:
            return await self._ping(member, "check_failed", limit)
        except BaseException:
            # The borrower gave up, not the session: it is checked again
            # in the background, then lent to someone else.
            self._spawn(
                self._check_abandoned(member), "check_abandoned", cancellable=True
            )
            raise

    async def _ping(self, member: Member, why: str, limit: float | None = None) -> bool:
        """Whether a session out of the idle queue still answers; one that
        does not is replaced. Cancelling it leaves the session to close()."""
        share = member.share
        share.checking.add(member)
        try:
            await member.gateway.ping(timeout=limit or min(5.0, self.timeout))
        except AiomeroError as exc:
            share.checking.discard(member)
            self._lost(member, why, exc)
            return False
        share.checking.discard(member)
        member.last_contact = time.monotonic()
        return True

    def _return(self, member: Member) -> None:
        """Take a session back from its borrower; never awaits, so a
        cancelled borrower cannot lose it on the way."""
        share = member.share
        share.lent.discard(member)
        self._returned.set()
        gateway = member.gateway
        gateway._default_group = member.default_group
        if self._closed:
            share.size -= 1
            self._spawn(self._close_member(member), "close_returned")
            return

        # A session that died, or whose group the borrower switched, is not
        # lent again; one that ran code of its own has its services closed,
        # and one with an abandoned call is checked first. Both count as
        # under a check at once, so that no waiter grows the pool for a
        # session that comes back in a moment.
        if not gateway.isConnected():
            self._lost(member, "returned_dead", None)
        elif gateway._group_switched:
            self._discard(member, "group_switched", replace=True)
        elif gateway._runs != member.runs_at_lend:
            share.checking.add(member)
            self._spawn(
                self._reset_services(member), "reset_services", cancellable=True
            )
        elif gateway._abandoned_calls != member.abandoned_at_lend:
            share.checking.add(member)
            self._spawn(
                self._check_abandoned(member), "check_abandoned", cancellable=True
            )
        elif time.monotonic() >= member.expires:
            self._discard(member, "lifetime", replace=False)
        else:
            member.last_contact = member.last_used = time.monotonic()
            self._hand(member)

    async def _check_abandoned(self, member: Member) -> None:
        # A call left running on the session thread must finish (or reach its
        # Ice deadline) and the session must still answer.
        if await self._ping(member, "abandoned_call"):
            self._hand(member)

    async def _reset_services(self, member: Member) -> None:
        # The borrower ran code of its own: its stateful services are closed
        # before the session is lent again.
        share = member.share
        try:
            await member.gateway.run(
                _close_stateful_services, group=None, timeout=min(10.0, self.timeout)
            )
        except AiomeroError as exc:
            share.checking.discard(member)
            self._lost(member, "reset_failed", exc)
            return
        share.checking.discard(member)
        member.last_contact = time.monotonic()
        self._hand(member)

    def _hand(self, member: Member) -> None:
        """Give a session to the first task waiting, else make it idle."""
        share = member.share
        if self._closed:
            share.size -= 1
            self._spawn(self._close_member(member), "close_late")
            return
        while share.waiting:
            waiter = share.waiting.popleft()
            if not waiter.done():
                waiter.set_result(member)
                return
        share.idle.append(member)

    # -- making and ending sessions -------------------------------------------

    def _grow(self, share: Share) -> None:
        share.size += 1
        share.growing += 1
        self._spawn(self._add_session(share), f"add_session[{share.label()}]")

    async def _add_session(self, share: Share) -> None:
        """Make one session for ``share``, retrying with backoff while the
        server is away, up to the reconnect deadline."""
        delay = _BACKOFF_FIRST
        member = None
        try:
            while member is None:
                try:
                    member = await self._new_member(share, counted=True)
                except Exception as exc:
                    if not self._retry_after(share, exc):
                        share.size -= 1
                        return
                    self._log().info(
                        "session_retry", pool=self.name, share=share.label(),
                        error=error_text(exc), delay=round(delay, 2),
                    )  # fmt: skip
                    # The pause ends early when the pool closes.
                    with contextlib.suppress(*_compat.TIMEOUT_ERRORS):
                        async with _compat.timeout(jittered(delay)):
                            await self._closing.wait()
                    if self._closed:
                        share.size -= 1
                        return
                    delay = min(delay * 2, _BACKOFF_MAX)
        except BaseException:
            share.size -= 1
            raise
        finally:
            share.growing -= 1
        self._hand(member)

    def _retry_after(self, share: Share, exc: Exception) -> bool:
        """Whether to try again, soon, after a failed attempt to make a
        session; if not, the share pauses before any new attempt."""
        now = time.monotonic()
        self._last_error = exc
        self._stats[base.SESSIONS_ERRORS] += 1
        if share.failing_since is None:
            share.failing_since = now

        # With no session left, waiting tasks learn why at once rather than
        # by a timeout.
        alone = share.size == share.growing
        if alone:
            self._fail_waiters(share, exc)

        # Past the reconnect deadline, the failure is reported, once.
        if now - share.failing_since >= self.reconnect_timeout:
            if not share.reported and share.user is None:
                share.reported = True
                self._log().error(
                    "reconnect_failed", pool=self.name, error=error_text(exc),
                    timeout=self.reconnect_timeout,
                )  # fmt: skip
                if self._reconnect_failed is not None:
                    self._reconnect_failed(self)
        elif (
            isinstance(exc, _TRANSIENT)
            and share.user is None
            and not (alone and share.size > share.min_size)
        ):
            return True

        # Refused credentials, a hook that raised, an unknown substituted
        # user: trying again at once would only storm the server.
        share.pause = min(_PAUSE_MAX, max(_BACKOFF_FIRST, share.pause * 2))
        share.pause_until = now + jittered(share.pause)
        return False

    def _fail_waiters(self, share: Share, exc: BaseException) -> None:
        while share.waiting:
            waiter = share.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    async def _new_member(self, share: Share, counted: bool = False) -> Member:
        """Connect a new session of ``share``; counted in its size when
        ``counted``, else counted here."""
        if not counted:
            share.size += 1
        try:
            gateway = await self._connect(share)
            if self._configure is not None and share.user is None:
                try:
                    configured = self._configure(gateway)
                    if not inspect.isawaitable(configured):
                        raise TypeError(
                            "configure must return an awaitable (an async def "
                            f"function), not {type(configured).__name__}"
                        )
                    await configured
                except BaseException:
                    kill = self._maker.kills_on_close(gateway, last=share.size == 1)
                    await gateway.close(kill=kill)
                    raise
                # What configure set is the session's starting point.
                gateway._group_switched = False
        except BaseException:
            if not counted:
                share.size -= 1
            raise
        now = time.monotonic()
        lifetime = self.max_lifetime
        if share.user is not None:
            # A substituted session dies at its time to live: renew it first.
            lifetime = min(lifetime, 0.8 * self.sudo_ttl)
        # Up to 5 % less, never more, so that sessions made together renew
        # at different times and none outlives max_lifetime.
        expires = now + lifetime * random.uniform(0.95, 1.0)
        member = Member(gateway, share, now, expires, now, now)
        member.default_group = gateway._default_group
        self._stats[base.SESSIONS_NUM] += 1
        self._last_error = None
        share.failing_since = None
        share.reported = False
        share.pause = 0.0
        old = share.replacing.popleft() if share.replacing else _UNSET
        if old is _UNSET:
            self._log().info(
                "session_created", pool=self.name, share=share.label(),
                session=member.fingerprint, size=share.size,
            )  # fmt: skip
        else:
            self._stats[base.SESSIONS_REPLACED] += 1
            self._log().warning(
                "session_replaced", pool=self.name, share=share.label(),
                old=old, new=member.fingerprint,
            )  # fmt: skip
        return member

    async def _connect(self, share: Share) -> AsyncGateway:
        if share.user is None:
            return await self._maker.own()

        # A substituted user's session is made by one of our own, borrowed
        # for a moment.
        admin = await self._get(self._own, self.timeout, count=False)
        try:
            ttl_ms = int(self.sudo_ttl * 1000)
            return await admin.gateway.suConn(share.user, ttl=ttl_ms)
        finally:
            self._return(admin)

    def _lost(self, member: Member, why: str, exc: BaseException | None) -> None:
        self._stats[base.SESSIONS_LOST] += 1
        self._log().warning(
            "session_lost", pool=self.name, session=member.fingerprint, reason=why,
            error=None if exc is None else error_text(exc),
        )  # fmt: skip
        self._discard(member, why, replace=True)

    def _discard(self, member: Member, why: str, replace: bool) -> None:
        """Close a session in the background; make another when ``replace``
        and someone needs it, or the share is below its minimum."""
        share = member.share
        share.size -= 1
        self._stats[base.RETURNS_DISCARDED] += 1
        self._log().debug(
            "session_discarded", pool=self.name, session=member.fingerprint,
            reason=why,
        )  # fmt: skip
        last = share.user is None and share.size == 0 and not share.growing
        self._spawn(self._close_member(member, last=last), "close_session")
        needed = share.pending_waiters() > share.growing or share.size < share.min_size
        if not self._closed and needed and time.monotonic() >= share.pause_until:
            if replace:
                share.replacing.append(member.fingerprint)
            self._grow(share)

    async def _close_member(
        self, member: Member, last: bool = False, deadline: float | None = None
    ) -> None:
        # A joined connection only detaches unless it is the last one, so
        # that closing one never ends the others' session.
        kill = self._maker.kills_on_close(member.gateway, last)
        left = _remaining(deadline)
        timeout = 5.0 if left is None else max(0.05, min(5.0, left))
        with contextlib.suppress(Exception):
            await member.gateway.close(kill=kill, timeout=timeout)

    # -- maintenance ------------------------------------------------------------

    def _tick(self) -> float:
        """One round of maintenance; the pause until the next one."""
        now = time.monotonic()
        for share in self._shares():
            self._tend(share, now)
        # A substituted user's share with nothing in it is forgotten.
        for user, share in list(self._sudo.items()):
            if not share.size and not share.waiting:
                del self._sudo[user]
        return min(_MAX_TICK, (self._maker.keepalive or _MAX_TICK) / 4)

    def _tend(self, share: Share, now: float) -> None:
        keepalive = self._maker.keepalive
        for member in list(share.idle):
            if now >= member.expires:
                share.idle.remove(member)
                self._discard(member, "lifetime", replace=False)
            elif share.size > share.min_size and now - member.last_used > self.max_idle:
                share.idle.remove(member)
                self._discard(member, "idle", replace=False)
                self._log().info(
                    "pool_shrunk", pool=self.name, share=share.label(),
                    size=share.size,
                )  # fmt: skip
            elif keepalive is not None and now - member.last_contact >= keepalive:
                share.idle.remove(member)
                share.checking.add(member)
                self._spawn(self._keep_alive(member), "keepalive", cancellable=True)

        # Back to the minimum, and enough for the tasks waiting, unless the
        # share pauses after a failure.
        if now < share.pause_until:
            return
        for _ in range(max(0, share.min_size - share.size)):
            self._grow(share)
        self._grow_for_waiters(share)

    async def _keep_alive(self, member: Member) -> None:
        self._stats[base.KEEPALIVES_NUM] += 1
        try:
            await member.gateway.keepAlive(timeout=min(10.0, self.timeout))
        except AiomeroError as exc:
            member.share.checking.discard(member)
            self._stats[base.KEEPALIVES_FAILED] += 1
            self._log().warning(
                "keepalive_failed", pool=self.name, session=member.fingerprint,
                error=error_text(exc),
            )  # fmt: skip
            self._lost(member, "keepalive_failed", exc)
            return
        member.share.checking.discard(member)
        member.last_contact = time.monotonic()
        self._hand(member)

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, cancellable: bool = False
    ) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        if cancellable:
            self._cancellable.add(task)
            task.add_done_callback(self._cancellable.discard)
        # Neither callback refers to the pool, which the maintenance task
        # must not keep alive.
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report_failure)

    def _shares(self) -> list[Share]:
        return [self._own, *self._sudo.values()]

    # -- statistics -------------------------------------------------------------

    def get_stats(self) -> dict[str, int]:
        """The pool's figures by name: the counters since it was made
        (``requests_num``, ``requests_queued``, ``requests_wait_ms``,
        ``requests_errors``, ``sessions_num``, ``sessions_errors``,
        ``sessions_lost``, ``sessions_replaced``, ``keepalives_num``,
        ``keepalives_failed``, ``returns_discarded``) and its state now
        (``pool_min``, ``pool_max``, ``pool_size``, ``pool_available``,
        ``requests_waiting``), all shares together."""
        stats = dict(self._stats)
        shares = self._shares()
        stats[base.POOL_MIN] = self.min_size
        stats[base.POOL_MAX] = self.max_size
        stats[base.POOL_SIZE] = sum(share.size for share in shares)
        stats[base.POOL_AVAILABLE] = sum(len(share.idle) for share in shares)
        stats[base.REQUESTS_WAITING] = sum(s.pending_waiters() for s in shares)
        return stats

    def pop_stats(self) -> dict[str, int]:
        """Like :meth:`get_stats`, then set the counters back to zero."""
        stats = self.get_stats()
        self._stats = dict.fromkeys(base.COUNTERS, 0)
        return stats


def _report_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        get_logger().error(
            "maintenance_failed",
            task=task.get_name(),
            error=error_text(task.exception()),
        )


async def _maintain(ref: weakref.ref[AsyncGatewayPool]) -> None:
    """Keep idle sessions alive, renew old ones, shrink idle ones above the
    minimum and grow back to it, once per tick, until the pool closes.

    It holds the pool only weakly, so that a pool its owner forgot can be
    collected (with a ResourceWarning) instead of living on in this task.
    """
    pause = 0.0
    while True:
        await asyncio.sleep(pause)
        pool = ref()
        if pool is None:
            return
        pause = pool._tick()
        del pool


def _close_stateful_services(gw: Any) -> int:
    # The per-session services still open on the server; each is closed.
    services = gw.c.getStatefulServices()
    for service in services:
        service.close()
    return len(services)


def _remaining(deadline: float | None) -> float | None:
    # Seconds left until ``deadline`` (None: no limit), never below zero.
    return None if deadline is None else max(0.0, deadline - time.monotonic())
