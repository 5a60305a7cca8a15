"""The exceptions aiomero raises.

Every failure of the server or the network reaches the caller as a subclass of
:class:`AiomeroError`, with the original exception as its ``__cause__``. Where
the original's text carries a session key (Ice prints object identities, and a
session's identity is its key), the cause is a :class:`SanitizedError` holding
the same type name and text with the key replaced by its fingerprint.
"""

from __future__ import annotations

import asyncio
import sys

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
    "SanitizedError",
    "ServerError",
    "ServerUnreachableError",
    "SessionExpiredError",
]

# On Python 3.10 asyncio.TimeoutError is not the built-in TimeoutError, and
# code written for either must catch aiomero's timeouts.
_TIMEOUT_BASES: tuple[type[BaseException], ...] = tuple(
    {TimeoutError: None, asyncio.TimeoutError: None}
)


class AiomeroError(Exception):
    """Base class of every error aiomero raises about a server or a session."""


class AuthenticationError(AiomeroError):
    """The server refused the credentials: wrong user name or password."""


class AccountDisabledError(AuthenticationError):
    """The account exists but may not log in (for example, it is inactive)."""


class ServerUnreachableError(AiomeroError):
    """No OMERO server answered: refused, unresolvable, unreachable, or a port
    where something other than OMERO listens."""


class SessionExpiredError(AiomeroError):
    """The server no longer knows the session: it expired or was closed."""


class ConnectionLostError(AiomeroError):
    """The connection to the server broke while a call was made or in flight."""


class GatewayClosedError(AiomeroError):
    """The gateway or pool is closed, or was never connected."""


class PermissionDeniedError(AiomeroError):
    """The server, or aiomero on its behalf, refused an operation to the user,
    for example a group the user is not a member of."""


class ServerError(AiomeroError):
    """The server raised an error about the request itself (for example an
    ``omero.ApiUsageException`` for a query it cannot answer)."""


if sys.version_info >= (3, 11):

    class CallTimeoutError(AiomeroError, TimeoutError):
        """A call, a connect or a close did not finish within its timeout."""

    class PoolTimeout(AiomeroError, TimeoutError):
        """No pooled session became available within the acquire timeout."""

else:  # pragma: no cover - exercised on Python 3.10 only

    class CallTimeoutError(AiomeroError, *_TIMEOUT_BASES):  # type: ignore[misc]
        """A call, a connect or a close did not finish within its timeout."""

    class PoolTimeout(AiomeroError, *_TIMEOUT_BASES):  # type: ignore[misc]
        """No pooled session became available within the acquire timeout."""


class PoolBusyError(AiomeroError):
    """Too many tasks are already waiting for a pooled session."""


class PoolClosedError(GatewayClosedError):
    """The pool is closed, or not opened yet."""


class SanitizedError(Exception):
    """Stands in for an original exception whose text carried a session key.

    ``original_type`` names the class of the exception it replaces; the text is
    the original's, with every session key replaced by its fingerprint.
    """

    def __init__(self, original_type: str, text: str) -> None:
        super().__init__(f"{original_type}: {text}")
        self.original_type = original_type
