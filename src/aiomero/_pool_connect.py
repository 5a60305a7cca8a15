"""How a pool makes its sessions: logging in, joining one shared session, or
substituting a user, and how long the server lets a session idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from .errors import AiomeroError
from .gateway import AsyncGateway

__all__ = ["SessionMaker"]

# The server's idle timeout when it cannot be asked (OMERO's default).
_DEFAULT_SERVER_IDLE = 600.0

_SHARED = (
    "the pool's connections share one session; pass group= per call or per "
    "acquire instead"
)


class SessionMaker:
    """Makes the connected gateways of one pool.

    With ``join``, the first session is logged in and every other joins its
    key; only one login is ever under way, so that sessions made together
    still share one server session. When the shared session is gone, the
    next one made logs in anew.
    """

    def __init__(
        self,
        factory: Callable[[], AsyncGateway],
        *,
        join: bool,
        keepalive: float | Literal["auto"] | None,
    ) -> None:
        self._factory = factory
        self.join = join
        # The first gateway checks the connection arguments at once, offline,
        # and tells where and how the pool connects.
        self.template = factory()
        if not isinstance(self.template, AsyncGateway):
            raise TypeError("factory must return an AsyncGateway")
        self._spare: AsyncGateway | None = self.template
        self._keepalive_setting = keepalive
        self.keepalive: float | None = None
        self.shared_key: str | None = None
        self.shared_router: str | None = None
        self._login = asyncio.Lock()

    async def own(self) -> AsyncGateway:
        """A connected gateway of the pool's own user."""
        key = self.shared_key
        if self.join and key is not None:
            try:
                gateway = await self._joined(key)
            except AiomeroError:
                # The shared session is gone: log in anew, once for all.
                if self.shared_key == key:
                    self.shared_key = None
            else:
                return await self._ready(gateway)
        if not self.join:
            gateway = self._new()
            await gateway.connect()
            return await self._ready(gateway)

        async with self._login:
            key = self.shared_key
            if key is None:
                gateway = self._new()
                await gateway.connect()
                self.shared_key = gateway._session_key()
                self.shared_router = gateway._router()
                return await self._ready(gateway)
        return await self._ready(await self._joined(key))

    async def _joined(self, key: str) -> AsyncGateway:
        model = self.template
        gateway = model._joining(key)
        gateway._join_router = self.shared_router
        gateway._default_group = model.settings.group
        await gateway.connect()
        return gateway

    async def _ready(self, gateway: AsyncGateway) -> AsyncGateway:
        if self.join:
            gateway._group_locked = _SHARED
        if self.keepalive is None and self._keepalive_setting is not None:
            self.keepalive = await self._keepalive_period(gateway)
        return gateway

    def _new(self) -> AsyncGateway:
        # The gateway made at construction is used first, then new ones.
        spare, self._spare = self._spare, None
        return spare if spare is not None else self._factory()

    async def _keepalive_period(self, gateway: AsyncGateway) -> float:
        if isinstance(self._keepalive_setting, float):
            return self._keepalive_setting
        try:
            idle = await gateway.run(_server_idle_timeout, group=None)
        except AiomeroError:
            idle = _DEFAULT_SERVER_IDLE
        return max(0.1, min(idle / 3, 300.0))

    def kills_on_close(self, gateway: AsyncGateway, last: bool) -> bool:
        """Whether closing ``gateway`` should end its session on the server:
        a joined connection only detaches, unless it is the last one."""
        if gateway._group_locked is None:
            return gateway._owns_session
        if last:
            self.shared_key = None
        return last


def _server_idle_timeout(gw: Any) -> float:
    # The idle timeout the server gives this session, in seconds.
    session = gw.getSessionService().getSession(gw.c.getSessionId())
    return float(session.getTimeToIdle().val) / 1000.0
