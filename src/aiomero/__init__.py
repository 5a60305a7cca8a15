"""aiomero: the OMERO image server from asyncio.

:class:`AsyncGateway` is one OMERO session whose blocking client runs on a
thread of its own; :class:`AsyncGatewayPool` shares such sessions among many
tasks. Every failure of the server or the network is an :class:`AiomeroError`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AccountDisabledError,
    AiomeroError,
    AuthenticationError,
    CallTimeoutError,
    ConnectionLostError,
    GatewayClosedError,
    PermissionDeniedError,
    PoolBusyError,
    PoolClosedError,
    PoolTimeout,
    ServerError,
    ServerUnreachableError,
    SessionExpiredError,
)

if TYPE_CHECKING:
    from .gateway import AsyncGateway
    from .pool import AsyncGatewayPool

__version__ = "0.1.0"

__all__ = [
    "AccountDisabledError",
    "AiomeroError",
    "AsyncGateway",
    "AsyncGatewayPool",
    "AuthenticationError",
    "CallTimeoutError",
    "ConnectionLostError",
    "GatewayClosedError",
    "PermissionDeniedError",
    "PoolBusyError",
    "PoolClosedError",
    "PoolTimeout",
    "ServerError",
    "ServerUnreachableError",
    "SessionExpiredError",
]

# The gateway and the pool import omero-py (tens of megabytes) on first use,
# so that importing aiomero, as pytest does for the emulator's plugin, is free.
_LAZY = {"AsyncGateway": "gateway", "AsyncGatewayPool": "pool"}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
