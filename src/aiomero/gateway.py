"""AsyncGateway: one OMERO session, its blocking client on a thread of its own.

Every method that may reach the server is a coroutine that runs the
corresponding BlitzGateway call on the session's worker thread, in order, and
hands back plain data (:mod:`aiomero.models`). ``isConnected()`` stays a plain
method reporting the last known state, as in BlitzGateway.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import itertools
import os
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

from . import _compat
from ._logging import (
    debug_enabled,
    fingerprint,
    get_logger,
    install_redaction,
    register_secret,
    unregister_secret,
)
from ._session import BlockingSession, Deadlines
from ._thread import SessionThread
from ._translate import Phase, error_text, is_refusal, translate
from .errors import (
    CallTimeoutError,
    ConnectionLostError,
    GatewayClosedError,
    PermissionDeniedError,
    ServerUnreachableError,
    SessionExpiredError,
)
from .models import ExperimenterInfo, GroupInfo, ObjectInfo, SessionInfo
from .queries import (
    check_ids,
    check_object_type,
    check_opts,
    convert_rows,
    event_context,
    find_objects,
    sudo_session,
    to_plain,
)
from .settings import ConnectionSettings, check_group, check_seconds, check_timeout

__all__ = ["AsyncGateway"]

T = TypeVar("T")

_UNSET: Any = object()
_ids = itertools.count(1)
_live: weakref.WeakSet[AsyncGateway] = weakref.WeakSet()
# Session threads told to stop while still inside a call, not waited for.
_stopping: weakref.WeakSet[SessionThread] = weakref.WeakSet()
# Seconds the session threads of forgotten gateways get to end at exit.
_EXIT_GRACE = 3.0


@atexit.register
def _free_forgotten_gateways() -> None:
    # A gateway nobody closed still holds an Ice communicator, whose threads
    # would keep the interpreter from exiting; destroy them at exit. Each
    # session thread is then given a moment to leave Ice: a thread still in
    # Ice's C++ code when the interpreter finalizes aborts the process.
    for gateway in list(_live):
        gateway._abandon("the interpreter exited")
    deadline = time.monotonic() + _EXIT_GRACE
    for thread in list(_stopping):
        thread.stop(join_timeout=max(0.0, deadline - time.monotonic()))


class AsyncGateway:
    """An OMERO session for asyncio code.

    The constructor only checks its arguments (``TypeError`` or ``ValueError``
    naming the field); :meth:`connect` or ``async with`` logs in. Each instance
    owns one worker thread, started on connect and stopped on close, on which
    every call into its ``BlitzGateway`` runs.

    ``timeout`` is the default deadline of a call in seconds (``None`` for no
    limit) and ``connect_timeout`` the deadline of a login. Both are also given
    to Ice, so a call the server never answers ends on the worker thread too.
    ``group`` is the default group of every query: a group id, a group name,
    or ``-1`` for every group of the user. ``ssl_ca_file`` makes the SSL login
    verify the server's certificate: it must be signed by the CA in that file
    (or be that very certificate, when self-signed) and name ``host``; a
    server that fails either check raises ``ServerUnreachableError`` before
    the password is sent. Off by default, as in omero-py, which accepts any
    certificate. With ``secure=False`` only the login is on SSL.
    ``retry_refused`` is an overall deadline, in seconds, during which a
    refused connection (a server still starting) is retried with backoff; a
    refused password is never retried.

    Every coroutine method that calls the server takes ``timeout=`` (default:
    ``timeout`` above) and, unless its docstring says otherwise, raises the
    same errors: ``CallTimeoutError`` when the deadline passes (the call
    also ends on the worker thread, at its Ice deadline);
    ``SessionExpiredError`` or ``ConnectionLostError`` when the session or
    the connection is gone (the gateway then reports not connected);
    ``ServerError`` when the server refuses the call; and
    ``GatewayClosedError`` before a connect or after a close. Cancelling the
    awaiting task returns at once; the call runs to its end on the thread,
    and the next call works, or raises one of the errors above.
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
        session_key: str | None = None,
        timeout: float | None = 60.0,
        connect_timeout: float = 10.0,
        close_timeout: float | None = 10.0,
        retry_refused: float | None = None,
        ssl_ca_file: str | os.PathLike[str] | None = None,
        useragent: str = "aiomero",
        logger: Any = None,
    ) -> None:
        self._settings = ConnectionSettings(
            username=username,
            password=passwd,
            host=host,
            port=port,
            secure=secure,
            group=group,
            session_key=session_key,
        )
        self._init_options(
            timeout,
            connect_timeout,
            close_timeout,
            retry_refused,
            ssl_ca_file,
            useragent,
            logger,
        )

    def _init_options(
        self,
        timeout: Any,
        connect_timeout: Any,
        close_timeout: Any,
        retry_refused: Any,
        ssl_ca_file: Any,
        useragent: Any,
        logger: Any,
    ) -> None:
        self._deadlines = Deadlines(
            connect=check_seconds(connect_timeout, "connect_timeout"),
            call=check_timeout(timeout, "timeout"),
        )
        self._close_timeout = check_timeout(close_timeout, "close_timeout")
        self._retry_refused = check_timeout(retry_refused, "retry_refused")
        if ssl_ca_file is not None and not isinstance(ssl_ca_file, str | os.PathLike):
            raise TypeError(
                f"ssl_ca_file must be a path, not {type(ssl_ca_file).__name__}"
            )
        if ssl_ca_file is not None and not os.path.isfile(ssl_ca_file):
            raise ValueError(f"ssl_ca_file: no such file {os.fspath(ssl_ca_file)!r}")
        # Absolute, so that a later change of directory does not lose it.
        self._ssl_ca_file = (
            None if ssl_ca_file is None else os.path.abspath(os.fspath(ssl_ca_file))
        )
        if not isinstance(useragent, str):
            raise TypeError(f"useragent must be a str, not {type(useragent).__name__}")
        self._useragent = useragent
        self._logger = logger
        self._number = next(_ids)
        self._group_var: contextvars.ContextVar[int | str | None] = (
            contextvars.ContextVar(f"aiomero_group_{self._number}", default=None)
        )
        self._default_group = self._settings.group
        self._thread: SessionThread | None = None
        self._session: BlockingSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._closing = False
        self._adopt: Any = None
        # Where a joined session's plain TCP endpoint is known (a pool's
        # shared session, a substitute user's), the join goes there directly.
        self._join_router: str | None = None
        self._owns_session = self._settings.session_key is None
        self._key_fp: str | None = None
        self._info: SessionInfo | None = None
        # What a pool needs to know before it lends this gateway again: calls
        # given up by a timeout or a cancellation, whether the session's group
        # was switched, and why switching is refused (a shared session).
        self._abandoned_calls = 0
        self._runs = 0
        # One connect at a time; a close waits for the one under way.
        self._connect_lock = asyncio.Lock()
        self._group_switched = False
        self._group_locked: str | None = None

    # -- construction helpers ---------------------------------------------

    @classmethod
    def from_settings(
        cls, settings: ConnectionSettings, **options: Any
    ) -> AsyncGateway:
        """A gateway for already-checked :class:`ConnectionSettings`."""
        return cls(
            settings.username,
            settings.password,
            host=settings.host,
            port=settings.port,
            secure=settings.secure,
            group=settings.group,
            session_key=settings.session_key,
            **options,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> AsyncGateway:
        """A gateway configured by ``OMERO_USER``, ``OMERO_PASSWORD``,
        ``OMERO_HOST``, ``OMERO_PORT``, ``OMERO_SECURE``, ``OMERO_GROUP`` and
        ``OMERO_SESSION_KEY`` (which joins that session instead of logging in).
        """
        return cls.from_settings(ConnectionSettings.from_env(environ), **options)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], **options: Any) -> AsyncGateway:
        """A gateway configured by a YAML file with the keys ``username``,
        ``password``, ``host``, ``port``, ``secure``, ``group`` and
        ``session_key``. An unknown key or a wrong value is a ``ValueError``
        and a wrong type a ``TypeError``, naming the file and the field."""
        return cls.from_settings(ConnectionSettings.from_yaml(path), **options)

    @classmethod
    def from_session_key(
        cls, key: str, host: str = "localhost", port: int = 4064, **options: Any
    ) -> AsyncGateway:
        """A gateway that joins the existing session ``key`` instead of
        logging in. Closing it only detaches from the session, unless
        ``close(kill=True)``."""
        return cls(host=host, port=port, session_key=key, **options)

    @classmethod
    def from_client(cls, client: Any, **options: Any) -> AsyncGateway:
        """A gateway for an ``omero.client`` that already holds a session.

        From then on the client is used from the gateway's thread only.
        Closing the gateway detaches from the session unless
        ``close(kill=True)``.
        """
        try:
            key = client.getSessionId()
        except Exception as exc:
            raise ValueError("client: the omero.client holds no session") from exc
        host = client.getProperty("omero.host") or "localhost"
        port = int(client.getProperty("omero.port") or 4064)
        gateway = cls(
            host=host,
            port=port,
            session_key=key,
            secure=bool(client.isSecure()),
            **options,
        )
        gateway._adopt = client
        return gateway

    def _router(self) -> str | None:
        # The plain TCP router this session's calls use, None on SSL.
        return None if self._session is None else self._session.router

    def _joining(self, key: str) -> AsyncGateway:
        # A gateway for the session ``key`` that keeps this one's server, its
        # certificate check, its deadlines, agent and logger.
        return type(self)(
            host=self.host,
            port=self.port,
            secure=self.secure,
            session_key=key,
            timeout=self._deadlines.call,
            connect_timeout=self._deadlines.connect,
            close_timeout=self._close_timeout,
            ssl_ca_file=self._ssl_ca_file,
            useragent=self._useragent,
            logger=self._logger,
        )

    # -- state ----------------------------------------------------------------

    def __repr__(self) -> str:
        s = self._settings
        who = s.username if s.session_key is None else "session-key"
        state = "connected" if self._connected else "not connected"
        return (
            f"<AsyncGateway #{self._number} {who}@{s.host}:{s.port} "
            f"secure={s.secure} {state} session={self._key_fp}>"
        )

    @property
    def host(self) -> str:
        """The server's host name."""
        return self._settings.host

    @property
    def port(self) -> int:
        """The SSL port logins go to."""
        return self._settings.port

    @property
    def secure(self) -> bool:
        """Whether every call stays on SSL, not only the login."""
        return self._settings.secure

    @property
    def settings(self) -> ConnectionSettings:
        """The checked connection settings (the password is never shown)."""
        return self._settings

    @property
    def session_fingerprint(self) -> str | None:
        """A short one-way fingerprint of the session key, for logs."""
        return self._key_fp

    def _session_key(self) -> str | None:
        # For a pool joining this session: the whole key, never to be logged.
        return None if self._session is None else self._session.session_key

    def isConnected(self) -> bool:
        """The last known state: True after a connect, until a close or a call
        that found the session or the connection gone. Makes no call; use
        :meth:`ping` to ask the server."""
        return self._connected

    def _log(self) -> Any:
        return self._logger if self._logger is not None else get_logger()

    # -- connecting -------------------------------------------------------

    async def connect(self, timeout: float | None = _UNSET) -> bool:
        """Log in (or join the session key), making exactly one login attempt.

        Returns True, as BlitzGateway does, or raises: ``AuthenticationError``
        (``AccountDisabledError`` for an account that may not log in),
        ``ServerUnreachableError``, ``CallTimeoutError`` after ``timeout``
        (default: ``connect_timeout``), ``PermissionDeniedError`` if the
        requested group is not one of the user's. Connecting a connected
        gateway does nothing, and concurrent connects make one session.
        Cancelling it abandons the half-made session, whose thread and
        communicator are freed.
        """
        if self._connected:
            return True
        async with self._connect_lock:
            if self._connected:
                return True
            return await self._connect_locked(timeout)

    async def _connect_locked(self, timeout: float | None) -> bool:
        self._free_dead_session()
        deadline = (
            self._deadlines.connect
            if timeout is _UNSET
            else check_timeout(timeout, "timeout")
        )
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                await self._connect_once(deadline)
                break
            except ServerUnreachableError as exc:
                # Only a refusal (a server still starting) is worth retrying.
                elapsed = time.monotonic() - started
                refused = is_refusal(exc)
                if (
                    self._retry_refused is None
                    or not refused
                    or elapsed >= self._retry_refused
                ):
                    raise
                attempt += 1
                pause = min(2.0, 0.1 * 2**attempt, self._retry_refused - elapsed)
                self._log().info(
                    "connect_retry", host=self.host, port=self.port, attempt=attempt
                )
                await asyncio.sleep(pause)
        return True

    async def _connect_once(self, deadline: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        install_redaction()
        register_secret(self._settings.password)
        session = BlockingSession(
            self._settings,
            self._deadlines,
            useragent=self._useragent,
            ssl_ca_file=self._ssl_ca_file,
            join_router=self._join_router,
        )
        thread = SessionThread(f"aiomero-session-{self._number}")
        thread.start()
        started = time.monotonic()
        try:
            future = thread.submit(self._connect_blocking, session)
            await _compat.wait_future(future, deadline)
        except BaseException as exc:
            # Whatever failed, the thread and communicator go with it.
            session.abort()
            thread.submit_nowait(session.close, False)
            # The login may still be running on the thread; do not wait for it.
            thread.stop(join_timeout=0)
            unregister_secret(self._settings.password)
            error = exc
            if isinstance(exc, _compat.TIMEOUT_ERRORS) and not isinstance(
                exc, CallTimeoutError
            ):
                error = CallTimeoutError(
                    f"connect to {self.host}:{self.port} timed out"
                )
                error.__suppress_context__ = True
            if not isinstance(exc, asyncio.CancelledError):
                self._log().warning(
                    "connect_failed",
                    host=self.host,
                    port=self.port,
                    user=self._settings.username,
                    error=error_text(error),
                )
            if error is exc:
                raise
            raise error from None
        self._session, self._thread = session, thread
        self._connected = True
        self._key_fp = fingerprint(session.session_key)
        self._info = self._session_info(session)
        _live.add(self)
        self._log().info(
            "connected",
            host=self.host,
            port=self.port,
            user=self._info.user_name,
            group=self._info.group_name,
            session=self._key_fp,
            secure=self.secure,
            joined=session.joined,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )

    def _connect_blocking(self, session: BlockingSession) -> None:
        try:
            session.connect(adopt=self._adopt, owns=self._owns_session)
            if self._settings.group is not None and not session.joined:
                session.set_session_group(self._settings.group)
            elif self._settings.group is not None:
                session.resolve_group(self._settings.group)
            return
        except PermissionDeniedError:
            session.close(kill=not session.joined)
            raise
        except BaseException as exc:
            error = translate(exc, Phase.CONNECT, f"connect to {self.host}:{self.port}")
        # Raised outside the handler, so that the original, whose text may
        # carry the session key, is not kept as the error's context either.
        raise error

    def _session_info(self, session: BlockingSession) -> SessionInfo:
        ec = session.event_context
        return SessionInfo(
            session=fingerprint(session.session_key),
            user_id=int(ec.userId),
            user_name=str(ec.userName),
            group_id=int(ec.groupId),
            group_name=str(ec.groupName),
            member_of=tuple(int(g) for g in ec.memberOfGroups),
            leader_of=tuple(int(g) for g in ec.leaderOfGroups),
            is_admin=bool(ec.isAdmin),
            host=self.host,
            port=self.port,
            secure=session.is_secure(),
            joined=session.joined,
        )

    async def __aenter__(self) -> AsyncGateway:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the call path ------------------------------------------------------

    def _usable(self) -> tuple[SessionThread, BlockingSession]:
        if self._closing or self._thread is None or self._session is None:
            raise GatewayClosedError(f"{self!r} is not connected")
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                f"{self!r} belongs to the event loop it connected on and was "
                "used from another one; connect a gateway per event loop"
            )
        return self._thread, self._session

    def _group_for_call(self, group: Any) -> int | str | None:
        if group is not _UNSET:
            return check_group(group)
        chosen = self._group_var.get()
        return chosen if chosen is not None else self._default_group

    async def _call(
        self,
        what: str,
        fn: Callable[..., T],
        *args: Any,
        group: Any = _UNSET,
        timeout: Any = _UNSET,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(blitz_gateway, *args, **kwargs)`` on the session thread."""
        thread, session = self._usable()
        deadline = (
            self._deadlines.call
            if timeout is _UNSET
            else check_timeout(timeout, "timeout")
        )
        chosen = self._group_for_call(group)
        started = time.monotonic()
        future = thread.submit(
            self._invoke, session, what, fn, args, kwargs, chosen, deadline
        )
        try:
            result: T = await _compat.wait_future(future, deadline)
        except CallTimeoutError:
            self._abandoned_calls += 1
            self._log().warning(
                "call_timed_out", call=what, timeout=deadline, session=self._key_fp
            )
            raise
        except asyncio.CancelledError:
            self._abandoned_calls += 1
            raise
        except _compat.TIMEOUT_ERRORS:
            self._abandoned_calls += 1
            self._log().warning(
                "call_timed_out", call=what, timeout=deadline, session=self._key_fp
            )
            raise CallTimeoutError(
                f"{what} did not finish within {deadline} s"
            ) from None
        except (SessionExpiredError, ConnectionLostError):
            self._connected = False
            raise
        log = self._log()
        if debug_enabled(log):
            log.debug(
                "call",
                call=what,
                session=self._key_fp,
                duration_ms=round((time.monotonic() - started) * 1000, 2),
            )
        return result

    def _invoke(
        self,
        session: BlockingSession,
        what: str,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: Any,
        deadline: Any,
    ) -> T:
        try:
            return session.invoke(fn, args, kwargs, group, deadline)  # type: ignore[no-any-return]
        except PermissionDeniedError:
            raise
        except BaseException as exc:
            error = translate(exc, Phase.CALL, what)
        # As in _connect_blocking: no context that could show the key.
        raise error

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout: float | None = _UNSET,
        group: int | str | None = _UNSET,
        **kwargs: Any,
    ) -> T:
        """Call ``fn(blitz_gateway, *args, **kwargs)`` on the session's thread.

        For the parts of the BlitzGateway API aiomero does not wrap. Whatever
        ``fn`` returns is handed back as is: return plain data, not wrappers
        that fetch from the server when read. Server and network errors are
        translated into aiomero errors; other exceptions pass through. On a
        timeout or a cancellation the caller moves on at once while ``fn``
        runs to its end (or to its Ice deadline) on the thread.
        """
        name = getattr(fn, "__name__", "run")
        # Code run here may open per-session services that a pool closes.
        self._runs += 1
        return await self._call(name, fn, *args, group=group, timeout=timeout, **kwargs)

    # -- group context ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def use_group(self, group: int | str) -> AsyncIterator[None]:
        """Run this task's calls on this gateway in ``group`` (``-1``: every
        group of the user) until the block ends. Other tasks sharing the
        gateway are not affected; a ``group=`` argument still wins."""
        token = self._group_var.set(check_group(group))
        try:
            yield
        finally:
            self._group_var.reset(token)

    async def setGroupForSession(
        self, group: int | str, *, timeout: float | None = _UNSET
    ) -> int:
        """Switch the session's group on the server and make it the default of
        this gateway's calls. Returns the group id. Raises
        ``PermissionDeniedError`` naming the group if the user is not in it.
        A session joined by several gateways switches for all of them, so a
        gateway lent by a pool of joined sessions refuses with ``RuntimeError``.
        """
        if self._group_locked is not None:
            raise RuntimeError(f"setGroupForSession: {self._group_locked}")
        gid = await self._call(
            "setGroupForSession",
            lambda _gw: self._require()[1].set_session_group(group),
            timeout=timeout,
            group=None,
        )
        self._default_group = gid
        self._group_switched = True
        return gid

    def _require(self) -> tuple[SessionThread, BlockingSession]:
        if self._thread is None or self._session is None:
            raise GatewayClosedError(f"{self!r} is not connected")
        return self._thread, self._session

    # -- BlitzGateway's session API, awaitable -------------------------------

    async def getEventContext(self, *, timeout: float | None = _UNSET) -> Any:
        """The session's ``omero.sys.EventContext`` (plain data).

        Its ``sessionUuid`` is the whole session key, but its text (``str``,
        ``repr``) shows only a fingerprint. Raises as every call does.
        """
        return await self._call(
            "getEventContext",
            lambda gw: event_context(gw.getEventContext()),
            timeout=timeout,
            group=None,
        )

    async def session_info(self, *, timeout: float | None = _UNSET) -> SessionInfo:
        """Who and where this session is, fetched fresh from the server."""
        _, session = self._usable()

        def fetch(gw: Any) -> SessionInfo:
            session.event_context = gw.c.sf.getAdminService().getEventContext()
            return self._session_info(session)

        self._info = await self._call(
            "session_info", fetch, timeout=timeout, group=None
        )
        return self._info

    async def getUser(self, *, timeout: float | None = _UNSET) -> ExperimenterInfo:
        """The logged-in user."""
        return await self._call(
            "getUser", lambda gw: to_plain(gw.getUser()), timeout=timeout
        )

    async def isAdmin(self, *, timeout: float | None = _UNSET) -> bool:
        """Whether the user is an administrator (full or restricted)."""
        return await self._call(
            "isAdmin", lambda gw: bool(gw.isAdmin()), timeout=timeout
        )

    async def isFullAdmin(self, *, timeout: float | None = _UNSET) -> bool:
        """Whether the user holds every administrator privilege."""
        return await self._call(
            "isFullAdmin", lambda gw: bool(gw.isFullAdmin()), timeout=timeout
        )

    async def getCurrentAdminPrivileges(
        self, *, timeout: float | None = _UNSET
    ) -> list[str]:
        """The names of the administrator privileges the user holds now."""
        return await self._call(
            "getCurrentAdminPrivileges",
            lambda gw: [str(p) for p in gw.getCurrentAdminPrivileges()],
            timeout=timeout,
        )

    async def getGroupFromContext(
        self, *, group: int | str | None = _UNSET, timeout: float | None = _UNSET
    ) -> GroupInfo:
        """The group calls of this task run in: the per-task or default group
        when one is set (other than ``-1``), else the session's group."""
        chosen = self._group_for_call(group)

        def fetch(gw: Any) -> GroupInfo:
            gid = gw.getEventContext().groupId
            if chosen not in (None, -1):
                gid = self._require()[1].resolve_group(chosen)
            group_info: GroupInfo = to_plain(gw.getAdminService().getGroup(gid))
            return group_info

        return await self._call(
            "getGroupFromContext", fetch, timeout=timeout, group=None
        )

    async def getGroupsMemberOf(
        self, *, timeout: float | None = _UNSET
    ) -> list[GroupInfo]:
        """The groups the user belongs to, system groups excluded."""
        return await self._call(
            "getGroupsMemberOf",
            lambda gw: [to_plain(g) for g in gw.getGroupsMemberOf()],
            timeout=timeout,
            group=None,
        )

    async def getAdministrators(
        self, *, timeout: float | None = _UNSET
    ) -> list[ExperimenterInfo]:
        """The members of the system group."""
        return await self._call(
            "getAdministrators",
            lambda gw: [to_plain(e) for e in gw.getAdministrators()],
            timeout=timeout,
            group=None,
        )

    async def getObjects(
        self,
        obj_type: str,
        ids: Any = None,
        params: Any = None,
        attributes: Mapping[str, Any] | None = None,
        respect_order: bool = False,
        opts: Mapping[str, Any] | None = None,
        *,
        group: int | str | None = _UNSET,
        timeout: float | None = _UNSET,
    ) -> list[Any]:
        """Objects of ``obj_type`` (``"Project"``, ``"Image"``, ...), as a list
        built on the session thread, with BlitzGateway's arguments.

        Checked before any call: an unknown type or option key is a
        ``ValueError``, an option of the wrong type a ``TypeError``.
        """
        kind = check_object_type(obj_type)
        checked = check_opts(opts)
        return await self._call(
            "getObjects",
            find_objects,
            kind,
            check_ids(ids),
            params,
            attributes,
            checked,
            respect_order,
            False,
            group=group,
            timeout=timeout,
        )

    async def getObject(
        self,
        obj_type: str,
        oid: int | None = None,
        params: Any = None,
        attributes: Mapping[str, Any] | None = None,
        opts: Mapping[str, Any] | None = None,
        *,
        group: int | str | None = _UNSET,
        timeout: float | None = _UNSET,
    ) -> Any:
        """One object, or None. More than one match raises ``ServerError``."""
        kind = check_object_type(obj_type)
        checked = check_opts(opts)
        ids = None if oid is None else check_ids([oid], "oid")
        return await self._call(
            "getObject",
            find_objects,
            kind,
            ids,
            params,
            attributes,
            checked,
            False,
            True,
            group=group,
            timeout=timeout,
        )

    def iter_objects(
        self,
        obj_type: str,
        ids: Any = None,
        attributes: Mapping[str, Any] | None = None,
        opts: Mapping[str, Any] | None = None,
        *,
        page_size: int = 500,
        group: int | str | None = _UNSET,
        timeout: float | None = _UNSET,
    ) -> AsyncIterator[Any]:
        """Page through objects of ``obj_type``, ``page_size`` per call:
        ``async for obj in gateway.iter_objects("Image"): ...``.

        The arguments are checked here, at the call, before any iteration.
        ``timeout`` applies to each page. Pages are read one at a time, so
        rows added or removed on the server while iterating may shift pages.
        """
        kind = check_object_type(obj_type)
        ids = check_ids(ids)
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise TypeError(f"page_size must be an int, not {type(page_size).__name__}")
        if page_size < 1:
            raise ValueError(f"page_size must be positive, not {page_size}")
        base = dict(check_opts(opts) or {})
        if "limit" in base or "offset" in base:
            raise ValueError(
                "opts: iter_objects pages itself; drop 'limit' and 'offset'"
            )
        base.setdefault("order_by", "obj.id")
        return self._pages(kind, ids, attributes, base, page_size, group, timeout)

    async def _pages(
        self,
        kind: str,
        ids: Any,
        attributes: Any,
        base: dict[str, Any],
        page_size: int,
        group: Any,
        timeout: Any,
    ) -> AsyncIterator[Any]:
        offset = 0
        while True:
            page = await self._call(
                "iter_objects",
                find_objects,
                kind,
                ids,
                None,
                attributes,
                {**base, "offset": offset, "limit": page_size},
                False,
                False,
                group=group,
                timeout=timeout,
            )
            for row in page:
                yield row
            if len(page) < page_size:
                return
            offset += page_size

    async def listProjects(
        self,
        eid: int | None = None,
        *,
        group: int | str | None = _UNSET,
        timeout: float | None = _UNSET,
    ) -> list[ObjectInfo]:
        """The projects visible in the group context, optionally of one owner."""
        opts = None if eid is None else {"owner": eid}
        return await self.getObjects("Project", opts=opts, group=group, timeout=timeout)

    async def projection(
        self,
        query: str,
        params: Any = None,
        *,
        group: int | str | None = _UNSET,
        timeout: float | None = _UNSET,
    ) -> list[list[Any]]:
        """Run an HQL projection query; rows of plain Python values."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty HQL string")

        def run(gw: Any) -> list[list[Any]]:
            rows = gw.getQueryService().projection(query, params, gw.SERVICE_OPTS)
            return convert_rows(rows)

        return await self._call("projection", run, group=group, timeout=timeout)

    async def keepAlive(self, *, timeout: float | None = _UNSET) -> bool:
        """Tell the server the session is in use. Returns True, or raises
        ``SessionExpiredError`` / ``ConnectionLostError`` where BlitzGateway
        would return False; it never reconnects behind the caller's back."""
        return await self._call(
            "keepAlive",
            lambda gw: bool(gw.c.sf.keepAlive(gw._proxies["admin"]._getObj())) or True,
            timeout=timeout,
            group=None,
        )

    async def ping(self, *, timeout: float | None = _UNSET) -> float:
        """Ask the server whether the session is alive; returns the round
        trip in seconds. Raises as :meth:`keepAlive` does."""
        started = time.monotonic()
        await self._call(
            "ping", lambda gw: gw.c.sf.keepAlive(None), timeout=timeout, group=None
        )
        return time.monotonic() - started

    async def suConn(
        self,
        username: str,
        group: str | None = None,
        ttl: int = 60000,
        *,
        timeout: float | None = _UNSET,
    ) -> AsyncGateway:
        """A new, connected gateway with a session of ``username``, created by
        this administrator's session for ``ttl`` milliseconds of idle time.

        Raises ``PermissionDeniedError`` if this user may not do it and
        ``ServerError`` if the server knows no such user. The new gateway owns
        its session: closing it ends the session.
        """
        if not isinstance(username, str) or not username:
            raise ValueError("username must be a non-empty str")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError(
                f"ttl must be a positive number of milliseconds, not {ttl!r}"
            )

        def create(gw: Any) -> str:
            if not gw.isAdmin():
                raise PermissionDeniedError(
                    f"suConn({username!r}): not an administrator"
                )
            return sudo_session(gw, username, group, ttl)

        key = await self._call("suConn", create, timeout=timeout, group=None)
        child = self._joining(key)
        child._join_router = self._router()
        child._owns_session = True
        await child.connect()
        return child

    # -- closing ------------------------------------------------------------

    async def close(
        self, *, timeout: float | None = _UNSET, kill: bool | None = None
    ) -> None:
        """End the session and free the thread and the Ice communicator.

        A session this gateway created is killed on the server; one it joined
        (by key, or through an adopted client) is only detached from, unless
        ``kill=True``. Calls in flight may finish for up to ``timeout``
        (default: ``close_timeout``); then the communicator is destroyed, which
        makes them fail, and nothing waits further. Idempotent; ``connect()``
        works again afterwards. A close during a connect waits for that
        connect to end (within its own timeout), then closes what it made.
        Cancelling a close still frees the resources.
        """
        if self._connect_lock.locked():
            async with self._connect_lock:
                pass
        thread, session = self._thread, self._session
        if thread is None or session is None:
            return
        deadline = (
            self._close_timeout
            if timeout is _UNSET
            else check_timeout(timeout, "timeout")
        )
        self._closing = True
        self._connected = False
        self._thread = self._session = None
        _live.discard(self)
        unregister_secret(self._settings.password)
        do_kill = self._owns_session if kill is None else kill
        started = time.monotonic()
        future = thread.submit(session.close, do_kill)
        stuck = True
        try:
            await _compat.wait_future(future, deadline)
            stuck = False
        except _compat.TIMEOUT_ERRORS:
            # Calls still running: destroying the communicator ends them.
            self._log().warning(
                "close_timed_out", session=self._key_fp, timeout=deadline
            )
            await asyncio.get_running_loop().run_in_executor(None, session.abort)
        except asyncio.CancelledError:
            session.abort()
            raise
        except Exception as exc:
            # The server may be gone; the local resources are freed anyway.
            stuck = False
            self._log().info("close_error", session=self._key_fp, error=error_text(exc))
        finally:
            thread.submit_nowait(session.close, False)
            # A thread still inside a call (user code in run(), say) ends on
            # its own once that call returns; the event loop must not wait.
            thread.stop(join_timeout=0 if stuck else None)
            if stuck:
                _stopping.add(thread)
        self._log().info(
            "closed",
            host=self.host,
            session=self._key_fp,
            killed=do_kill,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )

    def _abandon(self, why: str) -> None:
        """Free the thread and communicator of a gateway nobody closed."""
        thread, session = self._thread, self._session
        if thread is None or session is None:
            return
        described = repr(self)  # while it still says connected
        self._thread = self._session = None
        self._connected = False
        warnings.warn(
            f"{described} was not closed ({why}); its session was detached, not "
            "ended. Use 'async with' or await close().",
            ResourceWarning,
            stacklevel=2,
        )
        session.abort()
        thread.submit_nowait(session.close, False)
        thread.stop(join_timeout=0)
        _stopping.add(thread)

    def _free_dead_session(self) -> None:
        """Free what a session found expired or lost still holds.

        A call that met an expired session or a lost connection leaves the
        gateway disconnected but holding its thread and communicator, for
        :meth:`close` to free; connecting again frees them first.
        """
        thread, session = self._thread, self._session
        if thread is None or session is None:
            return
        self._thread = self._session = None
        _live.discard(self)
        unregister_secret(self._settings.password)
        session.abort()
        thread.submit_nowait(session.close, False)
        thread.stop(join_timeout=0)

    def __del__(self) -> None:
        if getattr(self, "_thread", None) is not None:
            self._abandon("garbage-collected while connected")
