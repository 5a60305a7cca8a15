"""The ServiceFactory: what a login or a join returns, one per client handle.

Its identity is ``<session key>`` in category ``<handle id>``: omero-py reads
the session key from the identity's name. The services it hands out are
default servants by category (``omero.api.IAdmin``, ...), named by the handle
id, so every handle has its own service proxies and a destroyed handle's
proxies stop working with it.
"""

from __future__ import annotations

from typing import Any

import Glacier2
import Ice
import IcePy
import omero
import omero.api
import omero.clients
import omero.model

from aiomero.testing.dispatch import (
    Call,
    SessionServant,
    amd_operation,
    remote,
    servant,
)

__all__ = ["SERVICE_PROXIES", "ServiceFactoryServant", "service_proxy"]

# Service name -> the proxy class a client expects for it.
SERVICE_PROXIES: dict[str, Any] = {
    "omero.api.IAdmin": omero.api.IAdminPrx,
    "omero.api.IConfig": omero.api.IConfigPrx,
    "omero.api.IContainer": omero.api.IContainerPrx,
    "omero.api.IQuery": omero.api.IQueryPrx,
    "omero.api.ISession": omero.api.ISessionPrx,
    "omero.api.ITypes": omero.api.ITypesPrx,
    "omero.api.IUpdate": omero.api.IUpdatePrx,
}

_ERR = (omero._t_ServerError,)


def _getter(name: str, proxy_type: Any) -> Any:
    return amd_operation(name, (), proxy_type, _ERR)


# The generated ServiceFactory dispatches synchronously; these tables make
# the operations served here asynchronous, so faults can delay them freely.
_AMD_OPS = {
    "getAdminService": _getter("getAdminService", omero.api._t_IAdminPrx),
    "getConfigService": _getter("getConfigService", omero.api._t_IConfigPrx),
    "getContainerService": _getter("getContainerService", omero.api._t_IContainerPrx),
    "getQueryService": _getter("getQueryService", omero.api._t_IQueryPrx),
    "getSessionService": _getter("getSessionService", omero.api._t_ISessionPrx),
    "getTypesService": _getter("getTypesService", omero.api._t_ITypesPrx),
    "getUpdateService": _getter("getUpdateService", omero.api._t_IUpdatePrx),
    "getByName": amd_operation(
        "getByName", (IcePy._t_string,), omero.api._t_ServiceInterfacePrx, _ERR
    ),
    "keepAlive": amd_operation(
        "keepAlive", (omero.api._t_ServiceInterfacePrx,), IcePy._t_bool, _ERR
    ),
    "keepAllAlive": amd_operation(
        "keepAllAlive", (omero.api._t_ServiceList,), IcePy._t_long, _ERR
    ),
    "getSecurityContexts": amd_operation(
        "getSecurityContexts", (), omero.api._t_IObjectList, _ERR
    ),
    "setSecurityContext": amd_operation(
        "setSecurityContext", (omero.model._t_IObject,), omero.model._t_IObject, _ERR
    ),
    "setSecurityPassword": amd_operation(
        "setSecurityPassword", (IcePy._t_string,), None, _ERR
    ),
    "setCallback": amd_operation(
        "setCallback", (omero.api._t_ClientCallbackPrx,), None, _ERR
    ),
    "subscribe": amd_operation(
        "subscribe", (IcePy._t_string, IcePy._t_ObjectPrx), None, _ERR
    ),
    "closeOnDestroy": amd_operation("closeOnDestroy", (), None, _ERR),
    "detachOnDestroy": amd_operation("detachOnDestroy", (), None, _ERR),
    "activeServices": amd_operation("activeServices", (), omero.api._t_StringSet, _ERR),
    "destroy": amd_operation("destroy"),
}


def service_proxy(call: Call, name: str) -> Any:
    """A proxy to service ``name`` for the calling handle."""
    handle = call.handle
    assert handle is not None
    identity = Ice.Identity(name=handle.id, category=name)
    return SERVICE_PROXIES[name].uncheckedCast(
        call.current.adapter.createProxy(identity)
    )


def factory_proxy(adapter: Any, session_key: str, handle_id: str) -> Any:
    """A Glacier2 session proxy to the ServiceFactory of a handle."""
    identity = Ice.Identity(name=session_key, category=handle_id)
    return Glacier2.SessionPrx.uncheckedCast(adapter.createProxy(identity))


@servant(omero.api.ServiceFactory, _AMD_OPS)
class ServiceFactoryServant(SessionServant, omero.api.ServiceFactory):  # type: ignore[misc]
    """One servant for every handle; the identity's category names the handle."""

    def handle_id(self, current: Any) -> str:
        return current.id.category  # type: ignore[no-any-return]

    # -- services --------------------------------------------------------------

    @remote
    def getAdminService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.IAdmin")

    @remote
    def getConfigService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.IConfig")

    @remote
    def getContainerService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.IContainer")

    @remote
    def getQueryService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.IQuery")

    @remote
    def getSessionService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.ISession")

    @remote
    def getTypesService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.ITypes")

    @remote
    def getUpdateService(self, call: Call) -> Any:
        return service_proxy(call, "omero.api.IUpdate")

    @remote
    def getByName(self, call: Call, name: str) -> Any:
        if name not in SERVICE_PROXIES:
            raise omero.ApiUsageException(
                message=f"no service {name!r} in the emulator"
            )
        return omero.api.ServiceInterfacePrx.uncheckedCast(service_proxy(call, name))

    @remote
    def activeServices(self, call: Call) -> list[str]:
        return []

    # -- keeping alive -----------------------------------------------------------

    @remote
    def keepAlive(self, call: Call, proxy: Any) -> bool:
        # Resolving the call already refreshed the session's idle time.
        return True

    @remote
    def keepAllAlive(self, call: Call, proxies: Any) -> int:
        # A bit set per proxy that is no longer alive: all of them are.
        return 0

    # -- security context ----------------------------------------------------------

    @remote
    def getSecurityContexts(self, call: Call) -> list[Any]:
        return [
            omero.model.ExperimenterGroupI(gid, False) for gid in call.user.group_ids
        ]

    @remote
    def setSecurityContext(self, call: Call, context: Any) -> Any:
        if not isinstance(context, omero.model.ExperimenterGroup) or context.id is None:
            raise omero.ApiUsageException(
                message="the emulator switches only to an ExperimenterGroup"
            )
        group_id = context.id.val
        user = call.user
        if group_id not in user.group_ids and not user.is_admin:
            raise omero.SecurityViolation(
                message=f"user {user.id} is not a member of group {group_id}"
            )
        try:
            call.runtime.catalog.group(group_id)
        except KeyError:
            raise omero.ApiUsageException(message=f"no group {group_id}") from None
        session = call.session
        previous, session.group_id = session.group_id, group_id
        return omero.model.ExperimenterGroupI(previous, False)

    @remote
    def setSecurityPassword(self, call: Call, password: str) -> None:
        if password != call.user.password:
            raise omero.SecurityViolation(message="password check failed")

    # -- life cycle ----------------------------------------------------------------

    @remote
    def setCallback(self, call: Call, callback: Any) -> None:
        assert call.handle is not None
        call.handle.callback = callback

    @remote
    def subscribe(self, call: Call, topic: str, proxy: Any) -> None:
        return None

    @remote
    def closeOnDestroy(self, call: Call) -> None:
        assert call.handle is not None
        call.handle.close_on_destroy = True

    @remote
    def detachOnDestroy(self, call: Call) -> None:
        assert call.handle is not None
        call.handle.close_on_destroy = False

    @remote(check_session=False)
    def destroy(self, call: Call) -> None:
        assert call.handle is not None
        call.runtime.sessions.destroy_handle(call.handle.id)
