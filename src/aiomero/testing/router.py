"""Logging in: the built-in Glacier2 router, or the servants behind a real one.

omero-py logs in through a Glacier2 router. By default the emulator is that
router itself (:class:`RouterServant`, identity ``OMERO.Glacier2/router``):
each client connection gets at most one session handle, and the handle ends
with the connection, as with a real router. Behind Debian's
``glacier2router`` the emulator is the router's permissions verifier and
session manager instead (:class:`VerifierServant`,
:class:`SessionManagerServant`), as a real OMERO server is.

A login whose user name and password are both the key of a live session
joins that session; any other login checks the catalog's users.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import Glacier2
import Ice
import IcePy
import omero.clients  # noqa: F401  (loads the Glacier2 skeletons)

from aiomero._logging import get_logger
from aiomero.testing.dispatch import (
    Call,
    Runtime,
    SessionServant,
    amd_operation,
    remote,
)
from aiomero.testing.dispatch import servant as servant_of
from aiomero.testing.factory import factory_proxy
from aiomero.testing.sessions import Session

__all__ = [
    "ROUTER_IDENTITY",
    "RouterServant",
    "SessionManagerServant",
    "VerifierServant",
    "open_session",
]

logger = get_logger()

ROUTER_IDENTITY = "OMERO.Glacier2/router"

_PASSWORD_FAILED = "Password check failed"


def open_session(
    runtime: Runtime, name: str, password: str, ctx: dict[str, str]
) -> Session:
    """Log ``name`` in, or join the session whose key is ``name``.

    Raises ``Glacier2.PermissionDeniedException`` for bad credentials, an
    inactive user or an ended session key, and
    ``Glacier2.CannotCreateSessionException`` for an unknown group.
    """
    sessions = runtime.sessions

    # A join names the session key as user and password.
    if name and name == password:
        try:
            session = sessions.join(name)
        except KeyError:
            pass
        except Exception:
            raise Glacier2.PermissionDeniedException(reason="session ended") from None
        else:
            runtime.counters.record_login(join=True)
            return session

    user = runtime.catalog.user_by_name(name)
    if user is None or user.password != password:
        raise Glacier2.PermissionDeniedException(reason=_PASSWORD_FAILED)
    if not user.active:
        raise Glacier2.PermissionDeniedException(reason=f"user {name!r} is inactive")

    group_id = user.default_group_id
    wanted = ctx.get("omero.group", "")
    if wanted:
        group = (
            runtime.catalog.group_by_name(wanted)
            if not wanted.lstrip("-").isdigit()
            else _group_by_id(runtime, int(wanted))
        )
        if group is None:
            raise Glacier2.CannotCreateSessionException(reason=f"no group {wanted!r}")
        # A group the user is not in still opens; the first call then fails
        # with SecurityViolation, which BlitzGateway answers by retrying.
        group_id = group.id

    session = sessions.create(user.id, group_id, agent=ctx.get("omero.agent", ""))
    runtime.counters.record_login(join=False)
    logger.info("emulator_login", user=user.name, session=session.key_fingerprint)
    return session


def _group_by_id(runtime: Runtime, group_id: int) -> Any:
    try:
        return runtime.catalog.group(group_id)
    except KeyError:
        return None


@dataclass
class _Route:
    """One client connection to the built-in router."""

    connection: Any
    category: str
    handle_id: str | None = None


class _ClosedCallback(Ice.ConnectionCallback):  # type: ignore[misc]
    def __init__(self, router: RouterServant, key: str) -> None:
        self._router = router
        self._key = key

    def heartbeat(self, connection: Any) -> None:
        pass

    def closed(self, connection: Any) -> None:
        self._router.connection_closed(self._key)


_ROUTER_OPS = {
    "getClientProxy": amd_operation(
        "getClientProxy", (), IcePy._t_ObjectPrx, idempotent=True
    ),
    "getServerProxy": amd_operation(
        "getServerProxy", (), IcePy._t_ObjectPrx, idempotent=True
    ),
    "addProxies": amd_operation(
        "addProxies", (Ice._t_ObjectProxySeq,), Ice._t_ObjectProxySeq, idempotent=True
    ),
    "getCategoryForClient": amd_operation(
        "getCategoryForClient", (), IcePy._t_string, idempotent=True
    ),
    "destroySession": amd_operation(
        "destroySession", (), None, (Glacier2._t_SessionNotExistException,)
    ),
    "getSessionTimeout": amd_operation(
        "getSessionTimeout", (), IcePy._t_long, idempotent=True
    ),
    "getACMTimeout": amd_operation("getACMTimeout", (), IcePy._t_int, idempotent=True),
}


@servant_of(Glacier2.Router, _ROUTER_OPS)
class RouterServant(SessionServant, Glacier2.Router):  # type: ignore[misc]
    """The Glacier2 router the emulator plays by default.

    Routed requests arrive on the router's own endpoints (``getClientProxy``
    answers null), so the emulator's servants share its adapters.
    """

    needs_session = False

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self._lock = threading.Lock()
        self._routes: dict[str, _Route] = {}
        self.refusing = False

    # -- connections ---------------------------------------------------------------

    def route(self, call: Call) -> _Route:
        """The route of the calling connection, made on first sight.

        While refusing, a connection seen for the first time is closed.
        """
        connection = call.current.con
        key = connection.toString()
        with self._lock:
            route = self._routes.get(key)
            if route is not None:
                return route
            if not self.refusing:
                route = _Route(connection, secrets.token_hex(8))
                self._routes[key] = route
        if route is None:
            connection.close(True)
            raise Glacier2.CannotCreateSessionException(reason="refused")

        # Outside the lock: on a connection already closed, Ice calls back at
        # once, and the callback takes the lock.
        connection.setCallback(_ClosedCallback(self, key))
        return route

    def connection_closed(self, key: str) -> None:
        """Forget a closed connection and destroy its session handle."""
        with self._lock:
            route = self._routes.pop(key, None)
        if route is not None and route.handle_id is not None:
            self.runtime.sessions.destroy_handle(route.handle_id)

    def drop_connections(self) -> int:
        """Close every client connection; return how many there were."""
        with self._lock:
            routes = list(self._routes.values())
        for route in routes:
            with contextlib.suppress(Ice.LocalException):
                route.connection.close(True)
        return len(routes)

    def forget_connections(self) -> None:
        """Drop all routes without touching their sessions (on shutdown)."""
        with self._lock:
            self._routes.clear()

    # -- Glacier2.Router -------------------------------------------------------------

    @remote
    def createSession(self, call: Call, name: str, password: str) -> Any:
        route = self.route(call)
        if route.handle_id is not None and self.runtime.sessions.handle(
            route.handle_id
        ):
            raise Glacier2.CannotCreateSessionException(reason="session exists")
        session = open_session(self.runtime, name, password, call.ctx)
        handle = self.runtime.sessions.open_handle(session, connection=route.category)
        route.handle_id = handle.id
        return factory_proxy(call.current.adapter, session.uuid, handle.id)

    @remote
    def createSessionFromSecureConnection(self, call: Call) -> Any:
        raise Glacier2.PermissionDeniedException(reason="use a user name and password")

    @remote
    def getCategoryForClient(self, call: Call) -> str:
        return self.route(call).category

    @remote
    def getClientProxy(self, call: Call) -> Any:
        self.route(call)
        return None

    @remote
    def getServerProxy(self, call: Call) -> Any:
        self.route(call)
        identity = Ice.Identity(name="server", category=ROUTER_IDENTITY.split("/")[0])
        return call.current.adapter.createProxy(identity)

    @remote
    def addProxies(self, call: Call, proxies: Any) -> list[Any]:
        return []

    @remote
    def refreshSession(self, call: Call) -> None:
        self._session_of(call)

    @remote
    def destroySession(self, call: Call) -> None:
        route = self.route(call)
        handle_id, route.handle_id = route.handle_id, None
        if handle_id is None or self.runtime.sessions.destroy_handle(handle_id) is None:
            raise Glacier2.SessionNotExistException()

    @remote
    def getSessionTimeout(self, call: Call) -> int:
        return int(self.runtime.sessions.idle_timeout)

    @remote
    def getACMTimeout(self, call: Call) -> int:
        return int(self.runtime.sessions.idle_timeout)

    def _session_of(self, call: Call) -> Session:
        route = self.route(call)
        handle = (
            self.runtime.sessions.handle(route.handle_id) if route.handle_id else None
        )
        if handle is None:
            raise Glacier2.SessionNotExistException()
        try:
            self.runtime.sessions.check(handle.session)
        except Exception:
            raise Glacier2.SessionNotExistException() from None
        return handle.session


@servant_of(Glacier2.PermissionsVerifier)
class VerifierServant(SessionServant, Glacier2.PermissionsVerifier):  # type: ignore[misc]
    """Checks passwords and session keys for ``glacier2router``."""

    needs_session = False

    def checkPermissions(
        self, name: str, password: str, current: Any = None
    ) -> tuple[bool, str]:
        sessions = self.runtime.sessions
        if name and name == password and sessions.get(name) is not None:
            return True, ""
        user = self.runtime.catalog.user_by_name(name)
        if user is None or user.password != password:
            return False, _PASSWORD_FAILED
        if not user.active:
            return False, f"user {name!r} is inactive"
        return True, ""


_MANAGER_OPS = {
    "create": amd_operation(
        "create",
        (IcePy._t_string, Glacier2._t_SessionControlPrx),
        Glacier2._t_SessionPrx,
        (Glacier2._t_CannotCreateSessionException,),
    ),
}


@servant_of(Glacier2.SessionManager, _MANAGER_OPS)
class SessionManagerServant(SessionServant, Glacier2.SessionManager):  # type: ignore[misc]
    """Creates sessions for ``glacier2router`` once the verifier agreed."""

    needs_session = False

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.refusing = False

    def adapt_error(self, error: BaseException) -> BaseException:
        # The router passes on only CannotCreateSessionException from here.
        if isinstance(error, Glacier2.PermissionDeniedException):
            adapted: BaseException = Glacier2.CannotCreateSessionException(
                reason=error.reason
            )
            return adapted
        return error

    @remote(name="createSession")
    def create(self, call: Call, name: str, control: Any) -> Any:
        if self.refusing:
            raise Glacier2.CannotCreateSessionException(reason="refused")
        ctx = call.ctx
        password = name if self.runtime.sessions.get(name) is not None else None
        try:
            session = (
                open_session(self.runtime, name, name, ctx)
                if password is not None
                else self._login_verified(name, ctx)
            )
        except Glacier2.PermissionDeniedException as exc:
            raise Glacier2.CannotCreateSessionException(reason=exc.reason) from None
        handle = self.runtime.sessions.open_handle(session)
        return factory_proxy(call.current.adapter, session.uuid, handle.id)

    def _login_verified(self, name: str, ctx: dict[str, str]) -> Session:
        # The router asked the verifier first, so the password was right.
        user = self.runtime.catalog.user_by_name(name)
        if user is None:
            raise Glacier2.PermissionDeniedException(reason=_PASSWORD_FAILED)
        return open_session(self.runtime, name, user.password, ctx)
