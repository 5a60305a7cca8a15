"""aiomero: the OMERO image server from asyncio."""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "AccountDisabledError",
    "AiomeroError",
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
