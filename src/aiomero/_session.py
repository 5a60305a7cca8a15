"""The blocking half of a gateway: everything here runs on the session thread.

:class:`BlockingSession` owns one ``omero.client`` and the ``BlitzGateway``
built on it. It logs in (exactly once), joins, switches to the plain TCP
endpoint, applies a call's group and deadline, and closes. Nothing here is
touched from the event loop thread, except :meth:`BlockingSession.abort`,
which only destroys the Ice communicator (thread-safe in Ice).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import Ice
import omero
import omero.clients
import omero.gateway

from .errors import PermissionDeniedError
from .settings import ConnectionSettings

__all__ = ["BlockingSession", "Deadlines"]


class _LoggingWithoutBasicConfig:
    """Stands in for the ``logging`` module inside ``omero.clients``.

    ``omero.client.__init__`` calls ``logging.basicConfig()``, which adds a
    handler to the application's root logger, and an application's own
    ``basicConfig(level=...)`` then does nothing. A library must not configure
    logging, so that one call is made a no-op; everything else is forwarded.
    """

    def __init__(self, module: Any) -> None:
        self._module = module

    def basicConfig(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


if not isinstance(omero.clients.logging, _LoggingWithoutBasicConfig):
    omero.clients.logging = _LoggingWithoutBasicConfig(omero.clients.logging)


@dataclass(frozen=True)
class Deadlines:
    """The timeouts a session gives to Ice, in seconds (None: no limit)."""

    connect: float
    call: float | None


def _ms(seconds: float | None) -> int:
    return -1 if seconds is None else max(1, math.ceil(seconds * 1000))


class BlockingSession:
    """One server session, used from its own thread only."""

    def __init__(
        self,
        settings: ConnectionSettings,
        deadlines: Deadlines,
        *,
        useragent: str,
        ssl_ca_file: str | None = None,
        join_router: str | None = None,
    ) -> None:
        self.settings = settings
        self.deadlines = deadlines
        self.useragent = useragent
        self.ssl_ca_file = ssl_ca_file
        self.client: Any = None
        self.gateway: Any = None
        self.session_key: str | None = None
        self.joined = False
        self._applied_ms = _ms(deadlines.call)
        self._group_ids: dict[str, int] = {}
        self.event_context: Any = None
        # The plain TCP router a join may go to directly (see connect), and
        # the router this session's calls use once connected.
        self.join_router = join_router
        self.router: str | None = None

    # -- connecting -------------------------------------------------------

    def _properties(self) -> list[str]:
        connect_ms = _ms(self.deadlines.connect)
        per_try_ms = -1 if connect_ms < 0 else max(1, connect_ms // 3)
        props = [
            # omero.client retries a connect timeout up to three times, so a
            # third of the deadline each keeps the whole login inside it.
            f"--Ice.Override.ConnectTimeout={per_try_ms}",
            f"--Ice.Default.InvocationTimeout={self._applied_ms}",
            "--omero.keep_alive=-1",
        ]
        if self.ssl_ca_file:
            # A chain check alone would let any server holding a certificate
            # of that CA stand in for this one: the name must match too.
            props += [
                "--IceSSL.VerifyPeer=2",
                f"--IceSSL.CAs={os.fspath(self.ssl_ca_file)}",
                "--IceSSL.CheckCertName=1",
            ]
        return props

    def _new_client(self, via: str | None = None) -> Any:
        props = self._properties()
        if via is not None:
            props.append(f"--Ice.Default.Router={via}")
        client = omero.client(
            host=self.settings.host, port=self.settings.port, args=props
        )
        client.setAgent(self.useragent)
        # Login calls go to the router; bound them by the connect deadline.
        ic = client.getCommunicator()
        router = ic.getDefaultRouter()
        ic.setDefaultRouter(router.ice_invocationTimeout(_ms(self.deadlines.connect)))
        return client

    def connect(self, adopt: Any = None, owns: bool = True) -> None:
        """Log in, join by key, or adopt an existing client; never retries."""
        settings = self.settings
        if adopt is not None:
            client = adopt
            self.joined = True
            # Its owner may not have asked for it; without it, destroying the
            # client at close would end the session instead of detaching.
            client.getSession().detachOnDestroy()
        else:
            # A session already moved to plain TCP by another connection is
            # joined there directly: half the round trips of joining on SSL,
            # then switching, and the key crosses the network the same way.
            direct = bool(
                settings.session_key and not settings.secure and self.join_router
            )
            client = self._new_client(self.join_router if direct else None)
            # Visible to abort() from here on, so a stuck login can be cut short.
            self.client = client
            try:
                if settings.session_key:
                    session = client.joinSession(settings.session_key)
                    self.joined = True
                else:
                    session = client.createSession(settings.username, settings.password)
                # Closing a client must only detach; killing is close()'s call.
                session.detachOnDestroy()
                if direct:
                    client._BaseClient__insecure = True
                elif not settings.secure:
                    secure_client = client
                    client = secure_client.createClient(secure=False)
                    self.client = client
                    try:
                        client.getSession().detachOnDestroy()
                    finally:
                        secure_client.__del__()
            except BaseException:
                self.client = None
                client.__del__()
                raise
        self.client = client
        self.session_key = client.getSessionId()
        self.router = (
            None if client.isSecure() else client.getProperty("Ice.Default.Router")
        )
        self.gateway = omero.gateway.BlitzGateway(client_obj=client)
        self._bound_new_services()
        self.event_context = self.gateway.getEventContext()
        self.owns = owns

    def _bound_new_services(self) -> None:
        """Give each service proxy the gateway creates the timeout in force.

        The gateway creates its service proxies on first use, and a proxy the
        server hands back carries Ice's default timeout, not the one of the
        call that asked for it; without this, the first call of a service
        under a shorter deadline could hold the thread for the default.
        """
        for wrapper in self.gateway._proxies.values():
            create = wrapper._create_func

            def bounded(create: Any = create) -> Any:
                return create().ice_invocationTimeout(self._applied_ms)

            wrapper._create_func = bounded

    # -- groups -----------------------------------------------------------

    def resolve_group(self, group: int | str) -> int:
        """The id of ``group``, checked against the user's memberships.

        Raises PermissionDeniedError naming the group when the user may not
        use it; administrators may use any group.
        """
        ec = self.event_context
        if isinstance(group, str):
            gid = self._group_ids.get(group)
            if gid is None:
                try:
                    gid = int(self.gateway.getAdminService().lookupGroup(group).id.val)
                except omero.ApiUsageException:
                    raise PermissionDeniedError(
                        f"group {group!r}: the server has no group of that name"
                    ) from None
                self._group_ids[group] = gid
        else:
            gid = group
        if gid == -1 or gid in ec.memberOfGroups or ec.isAdmin:
            return gid
        raise PermissionDeniedError(
            f"group {group!r}: {ec.userName!r} is not a member of it"
        )

    def set_session_group(self, group: int | str) -> int:
        gid = self.resolve_group(group)
        if gid == -1:
            raise ValueError(
                "group: -1 spans groups per call; a session needs one group"
            )
        if gid != self.event_context.groupId:
            self.gateway.setGroupForSession(gid)
            self.event_context = self.gateway.getEventContext()
        return gid

    # -- calls --------------------------------------------------------------

    def _apply_timeout(self, ms: int) -> None:
        """Give ``ms`` to every cached service proxy as its invocation timeout.

        BlitzGateway caches its service proxies, and a proxy's timeout can only
        change by replacing it, so a call with a deadline other than the
        default swaps them, and swaps them back afterwards.
        """
        if ms == self._applied_ms:
            return
        for wrapper in list(self.gateway._proxies.values()):
            prx = getattr(wrapper, "_obj", None)
            if prx is not None:
                wrapper._obj = prx.ice_invocationTimeout(ms)
        sf = self.client._BaseClient__sf
        if sf is not None:
            self.client._BaseClient__sf = sf.ice_invocationTimeout(ms)
        self._applied_ms = ms

    def invoke(
        self,
        fn: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: int | str | None,
        timeout: float | None,
    ) -> Any:
        """Run ``fn(gateway, *args, **kwargs)`` in ``group`` within ``timeout``."""
        opts = self.gateway.SERVICE_OPTS
        previous = opts.getOmeroGroup()
        if group is not None:
            opts.setOmeroGroup(self.resolve_group(group))
        ms = _ms(timeout)
        default_ms = _ms(self.deadlines.call)
        if ms != default_ms:
            self._apply_timeout(ms)
        try:
            return fn(self.gateway, *args, **kwargs)
        finally:
            if ms != default_ms:
                self._apply_timeout(default_ms)
            if group is not None:
                opts.setOmeroGroup(previous)

    # -- closing ------------------------------------------------------------

    def close(self, kill: bool) -> None:
        """End the session (``kill``) or only detach from it, then free Ice."""
        client, self.client, self.gateway = self.client, None, None
        if client is None:
            return
        try:
            if kill:
                client.killSession()
        finally:
            client.__del__()

    def abort(self) -> None:
        """Destroy the communicator from any thread: calls in flight fail."""
        client = self.client
        if client is None:
            return
        ic = client._BaseClient__ic
        if ic is not None:
            ic.destroy()

    def is_secure(self) -> bool:
        return bool(self.client is not None and self.client.isSecure())

    @staticmethod
    def ice_exception_types() -> tuple[type[BaseException], ...]:
        return (Ice.Exception, omero.ClientError)
