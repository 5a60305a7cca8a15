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
import itertools
import os
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Literal

from . import _compat
from . import _pool_base as base
from ._logging import get_logger
from ._pool_base import Member, Share, check_count, check_seconds, jittered
from ._translate import error_text
from .errors import (
    AiomeroError,
    AuthenticationError,
    PoolBusyError,
    PoolClosedError,
    PoolTimeout,
)
from .gateway import AsyncGateway
from .settings import check_group, check_timeout

__all__ = ["AsyncGatewayPool"]

_UNSET: Any = object()
_names = itertools.count(1)

# A share of a substituted user starts empty and grows on demand.
_SUDO_MIN = 0
# A session idle for longer than this is pinged before it is lent, when the
# acquire check is left to the pool (``check=None``).
_CHECK_AFTER_IDLE = 10.0
# The server's idle timeout when it cannot be asked (OMERO's default).
_DEFAULT_SERVER_IDLE = 600.0
# How often the maintenance task looks at the idle sessions, at most.
_MAX_TICK = 1.0
# Backoff between attempts to make a session while the server is away.
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 10.0

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
    seconds (less up to 10 % at random). ``keepalive_interval`` is the
    period of the keep-alive of idle sessions: ``"auto"`` for a third of the
    idle timeout the server reports, a number of seconds, or None for none.
    ``check`` pings a session before lending it: True always, False never,
    None (default) after an idle gap. A session that dies is replaced in the
    background, with exponential backoff, for up to ``reconnect_timeout``
    seconds; then ``reconnect_failed(pool)`` is called. ``configure(gw)``
    runs on each new session before it is first lent.

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

        elif username is not None or passwd is not None or gateway_options:
            raise TypeError("factory: give either a factory or connection arguments")
        if not callable(factory):
            raise TypeError(f"factory must be callable, not {type(factory).__name__}")
        # A first gateway checks the connection arguments now, offline.
        self._spare: AsyncGateway | None = factory()
        if not isinstance(self._spare, AsyncGateway):
            raise TypeError("factory must return an AsyncGateway")
        self._factory = factory
        # Where and how the pool connects, read from its first gateway.
        self._template = self._spare

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
        self._keepalive_setting = keepalive_interval
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
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        self.name = name or f"pool-{next(_names)}"

        self._own = Share(None, self.min_size, self.max_size)
        self._sudo: dict[str, Share] = {}
        self._stats = dict.fromkeys(base.COUNTERS, 0)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opened = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self._keepalive: float | None = None
        self._shared_key: str | None = None
        self._last_error: BaseException | None = None
        self._returned = asyncio.Event()
        self._closing = asyncio.Event()
        # Background tasks that close() may cancel: maintenance, keep-alives
        # and checks. Closing and making sessions run to their end, so that
        # no session is left half-made or half-ended on the server.
        self._cancellable: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._opened else "not open"
        return (
            f"<AsyncGatewayPool {self.name!r} {state} size={self._own.size} "
            f"idle={len(self._own.idle)}>"
        )

    @property
    def keepalive_interval(self) -> float | None:
        """The keep-alive period in use, known once the pool is open."""
        return self._keepalive

    def _log(self) -> Any:
        return get_logger()

    # -- opening and closing --------------------------------------------------

    async def open(self, wait: bool = True, timeout: float | None = None) -> None:
        """Open the pool: log in, then start the background maintenance.

        With ``wait`` the first session is made here, so a bad password or an
        unreachable server raises its own error (``AuthenticationError``,
        ``ServerUnreachableError``), and so are the rest up to ``min_size``,
        within ``timeout`` (``PoolTimeout``). Opening an open pool does
        nothing; a closed pool cannot be opened again. Cancelling it closes
        what it opened.
        """
        if self._closed:
            raise PoolClosedError(f"{self!r} is closed; make a new pool")
        if self._opened:
            return
        self._loop = asyncio.get_running_loop()
        self._pid = os.getpid()
        self._opened = True
        try:
            if wait and self.min_size:
                async with _compat.timeout(timeout):
                    first = await self._new_member(self._own)
                    self._hand(first)
                    await asyncio.gather(
                        *(self._first_sessions(self.min_size - 1)),
                    )
        except BaseException as exc:
            await self.close(timeout=0)
            if isinstance(exc, _compat.TIMEOUT_ERRORS) and not isinstance(
                exc, AiomeroError
            ):
                raise PoolTimeout(f"{self.name}: not open within {timeout} s") from None
            raise
        self._spawn(_maintain(weakref.ref(self)), "maintain", cancellable=True)
        self._log().info(
            "pool_opened",
            pool=self.name,
            min_size=self.min_size,
            max_size=self.max_size,
            keepalive_interval=self._keepalive,
            joined=self.join_sessions,
        )

    def _first_sessions(self, count: int) -> list[Coroutine[Any, Any, None]]:
        async def one() -> None:
            self._hand(await self._new_member(self._own))

        return [one() for _ in range(count)]

    async def close(self, timeout: float | None = 10.0) -> None:
        """Close the pool and every session in it.

        Tasks waiting for a session get ``PoolClosedError``. Sessions still
        lent out are waited for up to ``timeout`` seconds, then closed under
        their borrowers (whose calls then fail) with a ``ResourceWarning``.
        Idempotent. Cancelling it still closes every session, without waiting.
        """
        if self._closed:
            return
        self._closed = True
        self._closing.set()

        # Nothing new starts: maintenance stops and waiters are told.
        for task in list(self._cancellable):
            task.cancel()
        for share in self._shares():
            while share.waiting:
                waiter = share.waiting.popleft()
                if not waiter.done():
                    waiter.set_exception(PoolClosedError(f"{self.name} was closed"))
        try:
            await self._wait_returned(timeout)
        finally:
            await self._close_all()

    async def _wait_returned(self, timeout: float | None) -> None:
        # Borrowers get up to the timeout to give their sessions back.
        with contextlib.suppress(*_compat.TIMEOUT_ERRORS):
            async with _compat.timeout(timeout):
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

    async def _close_all(self) -> None:
        # Sessions under a check or a keep-alive are closed too: the tasks
        # doing those were cancelled.
        members = [
            m
            for share in self._shares()
            for m in (*share.idle, *share.lent, *share.checking)
        ]
        for share in self._shares():
            share.idle.clear()
            share.lent.clear()
            share.checking.clear()
            share.size = 0
        if self._spare is not None:
            self._spare = None
        # A shared session is killed once, by the last connection to close.
        last = members[-1] if self.join_sessions and members else None
        await asyncio.gather(
            *(self._close_member(m, kill=m is last or None) for m in members),
            return_exceptions=True,
        )
        # Sessions being made or ended finish first; a session made now is
        # closed by the task that made it.
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
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
        not one). Waits up to ``timeout`` (default: the pool's) and raises
        ``PoolTimeout``, or ``PoolBusyError`` at once when too many tasks wait.
        The session goes back when the block ends, whatever ends it; a task
        cancelled while waiting or holding never loses a session.
        """
        chosen = check_group(group)
        if user is not None and (not isinstance(user, str) or not user.strip()):
            raise ValueError("user must be a non-empty user name")
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

    async def _get(self, share: Share, wait: float | None) -> Member:
        self._stats[base.REQUESTS_NUM] += 1

        # An idle session goes at once, the most recently used first, so
        # that sessions beyond the minimum stay idle and can be closed.
        while share.idle:
            member = share.idle.pop()
            if await self._fit_to_lend(member):
                return self._lend(member)

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
        # Sessions under a check come back soon: only the shortfall grows.
        coming = share.growing + len(share.checking)
        if share.size < share.max_size and coming < share.pending_waiters():
            self._grow(share)
        started = time.monotonic()
        try:
            async with _compat.timeout(wait):
                member = await waiter
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
            raise
        finally:
            self._stats[base.REQUESTS_WAIT_MS] += int(
                (time.monotonic() - started) * 1000
            )
        return self._lend(member)

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

    async def _fit_to_lend(self, member: Member) -> bool:
        """Whether an idle session may be lent, pinging it when due."""
        now = time.monotonic()
        if now >= member.expires:
            self._discard(member, "expired", replace=False)
            return False
        check = self.check
        if check is None:
            check = now - member.last_contact > _CHECK_AFTER_IDLE
        if not check:
            return True
        try:
            alive = await self._ping(member, "check_failed")
        except BaseException:
            member.share.checking.discard(member)
            self._discard(member, "check_cancelled", replace=True)
            raise
        return alive

    async def _ping(self, member: Member, why: str) -> bool:
        """Whether a session out of the idle queue still answers; one that
        does not is replaced. Cancelling it leaves the session to close()."""
        share = member.share
        share.checking.add(member)
        try:
            await member.gateway.ping(timeout=min(5.0, self.timeout))
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
        gateway._default_group = self._default_group_of(share)
        if self._closed:
            self._spawn(self._close_member(member), "close_returned")
            return

        # A session that died, or whose group the borrower switched, is not
        # lent again; one with an abandoned call is checked first.
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
            # Counted as under a check at once, so no waiter grows the pool
            # for a session that comes back in a moment.
            share.checking.add(member)
            self._spawn(
                self._check_abandoned(member), "check_abandoned", cancellable=True
            )
        elif time.monotonic() >= member.expires:
            self._discard(member, "lifetime", replace=True)
        else:
            member.last_contact = member.last_used = time.monotonic()
            self._hand(member)

    def _default_group_of(self, share: Share) -> int | str | None:
        return self._template.settings.group if share.user is None else None

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
        deadline = time.monotonic() + self.reconnect_timeout
        delay = _BACKOFF_FIRST
        member = None
        try:
            while member is None:
                try:
                    member = await self._new_member(share, counted=True)
                except AiomeroError as exc:
                    if not self._retry_after(share, exc, deadline):
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

    def _retry_after(self, share: Share, exc: AiomeroError, deadline: float) -> bool:
        """Whether to try again after a failed attempt to make a session."""
        self._last_error = exc
        self._stats[base.SESSIONS_ERRORS] += 1

        # With no session left, waiting tasks learn why at once rather than
        # by a timeout; beyond the minimum nobody needs the retry.
        alone = share.size == share.growing
        if alone:
            self._fail_waiters(share, exc)

        # Credentials the server refused will not be accepted later, nor a
        # substituted user it does not know.
        if isinstance(exc, AuthenticationError) or share.user is not None:
            return False
        if alone and share.size > share.min_size:
            return False
        if time.monotonic() < deadline:
            return True
        self._log().error(
            "reconnect_failed", pool=self.name, error=error_text(exc),
            timeout=self.reconnect_timeout,
        )  # fmt: skip
        if self._reconnect_failed is not None:
            self._reconnect_failed(self)
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
                    await self._configure(gateway)
                except BaseException:
                    await gateway.close(kill=False if self.join_sessions else None)
                    raise
        except BaseException:
            if not counted:
                share.size -= 1
            raise
        now = time.monotonic()
        lifetime = self.max_lifetime
        if share.user is not None:
            # A substituted session dies at its time to live: renew it first.
            lifetime = min(lifetime, 0.8 * self.sudo_ttl)
        member = Member(gateway, share, now, now + jittered(lifetime, 0.05), now, now)
        self._stats[base.SESSIONS_NUM] += 1
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
        if share.user is not None:
            # A substituted user's session is made by one of our own.
            async with self.acquire() as admin:
                ttl_ms = int(self.sudo_ttl * 1000)
                return await admin.suConn(share.user, ttl=ttl_ms)

        if self.join_sessions and self._shared_key is not None:
            model = self._template
            gateway = AsyncGateway.from_session_key(
                self._shared_key, host=model.host, port=model.port,
                secure=model.secure, timeout=model._deadlines.call,
                connect_timeout=model._deadlines.connect,
            )  # fmt: skip
            gateway._default_group = model.settings.group
            try:
                await gateway.connect()
            except AiomeroError:
                # The shared session is gone: the next attempt logs in anew.
                self._shared_key = None
                raise
        else:
            gateway = self._take_spare()
            await gateway.connect()
            if self.join_sessions:
                self._shared_key = gateway._session_key()
        if self.join_sessions:
            gateway._group_locked = (
                "the pool's connections share one session; pass group= per "
                "call or per acquire instead"
            )
        if self._keepalive is None and self._keepalive_setting is not None:
            self._keepalive = await self._keepalive_period(gateway)
        return gateway

    def _take_spare(self) -> AsyncGateway:
        # The gateway made at construction is used first, then new ones.
        spare, self._spare = self._spare, None
        return spare if spare is not None else self._factory()

    async def _keepalive_period(self, gateway: AsyncGateway) -> float:
        if self._keepalive_setting != "auto":
            assert isinstance(self._keepalive_setting, float)
            return self._keepalive_setting
        try:
            idle = await gateway.run(_server_idle_timeout, group=None)
        except AiomeroError:
            idle = _DEFAULT_SERVER_IDLE
        return max(0.1, min(idle / 3, 300.0))

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
        self._spawn(self._close_member(member), "close_session")
        needed = share.pending_waiters() > share.growing or share.size < share.min_size
        if not self._closed and needed:
            if replace:
                share.replacing.append(member.fingerprint)
            self._grow(share)

    async def _close_member(self, member: Member, kill: bool | None = None) -> None:
        # A joined connection only detaches unless told to end the session,
        # so that closing one never ends the others'.
        if kill is None:
            kill = not self.join_sessions and member.gateway._owns_session
        with contextlib.suppress(Exception):
            await member.gateway.close(kill=kill, timeout=5.0)

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
        return min(_MAX_TICK, (self._keepalive or _MAX_TICK) / 4)

    def _tend(self, share: Share, now: float) -> None:
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
            elif self._keepalive is not None and (
                now - member.last_contact >= self._keepalive
            ):
                share.idle.remove(member)
                share.checking.add(member)
                self._spawn(self._keep_alive(member), "keepalive", cancellable=True)
        missing = share.min_size - share.size
        for _ in range(max(0, missing)):
            self._grow(share)

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


def _server_idle_timeout(gw: Any) -> float:
    # The idle timeout the server gives this session, in seconds.
    session = gw.getSessionService().getSession(gw.c.getSessionId())
    return float(session.getTimeToIdle().val) / 1000.0
