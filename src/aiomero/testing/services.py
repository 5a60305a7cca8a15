"""IConfig, ISession, IQuery, IContainer and IUpdate of the emulator.

Queries and counts go to the catalog with the caller of the call: the
session's user, in the group named by the call's ``omero.group`` context or
else the session's current group.
"""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from typing import Any

import omero
import omero.api
import omero.clients
import omero.model
from omero.rtypes import rlong, rstring, rtime

from aiomero.testing.dispatch import Call, SessionServant, remote, servant
from aiomero.testing.sessions import Session

__all__ = [
    "ConfigServant",
    "ContainerServant",
    "QueryServant",
    "SessionServiceServant",
    "UpdateServant",
    "default_config",
]

EMULATED_VERSION = "5.6.0-aiomero-emulator"


def default_config(insecure_router: str, idle_timeout: float) -> dict[str, str]:
    """The configuration values the emulator answers ``IConfig`` with."""
    return {
        "omero.version": EMULATED_VERSION,
        "omero.router.insecure": insecure_router,
        "omero.sessions.timeout": str(int(idle_timeout * 1000)),
        "omero.db.uuid": str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "aiomero-emulator")),
        "omero.pixeldata.max_plane_width": "3192",
        "omero.pixeldata.max_plane_height": "3192",
        "omero.client.viewer.roi_limit": "2000",
        "omero.client.viewer.initial_zoom_level": "0",
        "omero.client.viewer.interpolate_pixels": "true",
        "omero.client.download_as.max_size": "144000000",
        "omero.client.ui.tree.type_order": "tag,project,screen,plate,dataset",
    }


@servant(omero.api.IConfig)
class ConfigServant(SessionServant, omero.api.IConfig):  # type: ignore[misc]
    """Configuration values; unknown keys read as empty strings."""

    @remote
    def getVersion(self, call: Call) -> str:
        return call.runtime.config["omero.version"]

    @remote
    def getConfigValue(self, call: Call, key: str) -> str:
        return call.runtime.config.get(key, "")

    @remote
    def getConfigValues(self, call: Call, pattern: str) -> dict[str, str]:
        found = re.compile(pattern)
        return {k: v for k, v in call.runtime.config.items() if found.search(k)}

    @remote
    def getConfigDefaults(self, call: Call) -> dict[str, str]:
        return dict(call.runtime.config)

    @remote
    def getClientConfigValues(self, call: Call) -> dict[str, str]:
        config = call.runtime.config
        return {k: v for k, v in config.items() if k.startswith("omero.client.")}

    @remote
    def getClientConfigDefaults(self, call: Call) -> dict[str, str]:
        return self.getClientConfigValues(call)

    @remote
    def getDatabaseUuid(self, call: Call) -> str:
        return call.runtime.config["omero.db.uuid"]

    @remote
    def getServerTime(self, call: Call) -> Any:
        return rtime(int(time.time() * 1000))

    @remote
    def getDatabaseTime(self, call: Call) -> Any:
        return rtime(int(time.time() * 1000))


def session_object(session: Session) -> Any:
    """The ``omero.model.SessionI`` a server returns for ``session``."""
    obj = omero.model.SessionI(session.id, True)
    obj._uuid = rstring(session.uuid)
    obj._started = rtime(session.started_ms)
    obj._timeToIdle = rlong(int(session.idle_timeout * 1000))
    obj._timeToLive = rlong(int(session.time_to_live * 1000))
    obj._userAgent = rstring(session.agent)
    obj._defaultEventType = rstring("User")
    obj._owner = omero.model.ExperimenterI(session.user_id, False)
    obj._details._owner = omero.model.ExperimenterI(session.user_id, False)
    obj._details._group = omero.model.ExperimenterGroupI(session.group_id, False)
    return obj


@servant(omero.api.ISession)
class SessionServiceServant(SessionServant, omero.api.ISession):  # type: ignore[misc]
    """Reading, counting, closing and (for admins with Sudo) creating sessions."""

    def _visible(self, call: Call, key: str) -> Session:
        session = call.runtime.sessions.live(key) if key else None
        if session is None:
            raise omero.RemovedSessionException(message="no such session")
        user = call.user
        if session.user_id != user.id and "ReadSession" not in user.privileges:
            raise omero.SecurityViolation(message="not your session")
        return session

    @remote
    def getSession(self, call: Call, key: str) -> Any:
        try:
            return session_object(self._visible(call, key))
        except KeyError:
            raise omero.RemovedSessionException(message="no such session") from None

    @remote
    def getReferenceCount(self, call: Call, key: str) -> int:
        try:
            return self._visible(call, key).refcount
        except KeyError:
            raise omero.RemovedSessionException(message="no such session") from None

    @remote
    def closeSession(self, call: Call, session: Any) -> int:
        key = session.uuid.val if session is not None and session.uuid else ""
        try:
            self._visible(call, key)
        except KeyError:
            raise omero.RemovedSessionException(message="no such session") from None
        return call.runtime.sessions.close(key)

    @remote
    def getMyOpenSessions(self, call: Call) -> list[Any]:
        mine = call.runtime.sessions.sessions(call.user.id)
        return [session_object(s) for s in mine]

    @remote
    def createSessionWithTimeout(self, call: Call, principal: Any, ttl_ms: int) -> Any:
        return session_object(self._sudo(call, principal, ttl_ms, None))

    @remote
    def createSessionWithTimeouts(
        self, call: Call, principal: Any, ttl_ms: int, idle_ms: int
    ) -> Any:
        return session_object(self._sudo(call, principal, ttl_ms, idle_ms))

    def _sudo(
        self, call: Call, principal: Any, ttl_ms: int, idle_ms: int | None
    ) -> Session:
        # Only an administrator holding Sudo may open sessions for others.
        catalog = call.runtime.catalog
        sudoer = call.user
        if not sudoer.is_admin or "Sudo" not in sudoer.privileges:
            raise omero.SecurityViolation(message="creating sessions needs Sudo")
        user = catalog.user_by_name(principal.name)
        if user is None or not user.active:
            raise omero.ApiUsageException(message=f"no active user {principal.name!r}")

        group_id = user.default_group_id
        if principal.group:
            group = catalog.group_by_name(principal.group)
            if group is None or group.id not in user.group_ids:
                raise omero.SecurityViolation(
                    message=f"{principal.name!r} is not in group {principal.group!r}"
                )
            group_id = group.id
        return call.runtime.sessions.create(
            user.id,
            group_id,
            agent=call.ctx.get("omero.agent", ""),
            idle_timeout=None if idle_ms is None else idle_ms / 1000,
            time_to_live=ttl_ms / 1000,
            sudoer_id=sudoer.id,
        )


@servant(omero.api.IQuery)
class QueryServant(SessionServant, omero.api.IQuery):  # type: ignore[misc]
    """HQL queries and lookups by id, answered by the catalog."""

    @remote
    def findAllByQuery(self, call: Call, query: str, params: Any) -> Any:
        return call.runtime.catalog.find_all_by_query(query, params, call.caller())

    @remote
    def findByQuery(self, call: Call, query: str, params: Any) -> Any:
        return call.runtime.catalog.find_by_query(query, params, call.caller())

    @remote
    def projection(self, call: Call, query: str, params: Any) -> Any:
        return call.runtime.catalog.projection(query, params, call.caller())

    @remote
    def find(self, call: Call, kind: str, id: int) -> Any:
        return call.runtime.catalog.find(kind, id, call.caller())

    @remote
    def get(self, call: Call, kind: str, id: int) -> Any:
        found = call.runtime.catalog.find(kind, id, call.caller())
        if found is None:
            raise omero.ValidationException(message=f"no {kind} with id {id}")
        return found


@servant(omero.api.IContainer)
class ContainerServant(SessionServant, omero.api.IContainer):  # type: ignore[misc]
    """Counting children, as ``countChildren()`` asks."""

    @remote
    def getCollectionCount(
        self, call: Call, kind: str, prop: str, ids: list[int], options: Any
    ) -> Any:
        return call.runtime.catalog.collection_count(
            kind, prop, ids, options, call.caller()
        )


@servant(omero.api.IUpdate)
class UpdateServant(SessionServant, omero.api.IUpdate):  # type: ignore[misc]
    """A read-only server: every IUpdate operation is refused."""
