"""Turning exceptions of Ice and omero-py into typed aiomero errors.

The mapping depends on the phase: a refused connection while logging in
means the server is unreachable, the same refusal in the middle of a session
means the connection was lost. The original stays reachable as ``__cause__``,
unless its text carried a session key; then a :class:`SanitizedError` with the
key fingerprinted stands in for it.
"""

from __future__ import annotations

import enum
from typing import Any

import Glacier2
import Ice
import omero

from ._logging import redact
from .errors import (
    AccountDisabledError,
    AiomeroError,
    AuthenticationError,
    CallTimeoutError,
    ConnectionLostError,
    GatewayClosedError,
    PermissionDeniedError,
    SanitizedError,
    ServerError,
    ServerUnreachableError,
    SessionExpiredError,
)

__all__ = ["Phase", "error_text", "is_refusal", "translate"]

# Words a server puts in its refusal of an account that exists but may not
# log in; anything else is treated as bad credentials.
_DISABLED_WORDS = ("inactive", "disabled", "not active", "locked")


class Phase(enum.Enum):
    CONNECT = "connect"
    CALL = "call"
    CLOSE = "close"


def _describe(exc: BaseException) -> str:
    """One line naming the exception and its reason, with secrets scrubbed."""
    detail = ""
    for attr in ("reason", "message", "serverExceptionClass", "unknown"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value.strip():
            detail = value.strip().splitlines()[0]
            break
    if not detail and isinstance(exc, Ice.ObjectNotExistException):
        detail = "object does not exist"
    name = type(exc).__module__.split(".")[0] + "." + type(exc).__name__
    return redact(f"{name}: {detail}" if detail else name)


def _cause(exc: BaseException) -> BaseException:
    text = str(exc)
    clean = redact(text)
    if clean == text:
        return exc
    return SanitizedError(type(exc).__name__, clean)


def _classify(exc: BaseException, phase: Phase, what: str) -> AiomeroError:
    desc = _describe(exc)
    if isinstance(exc, AiomeroError):
        return exc
    if isinstance(exc, Ice.CommunicatorDestroyedException):
        return GatewayClosedError(f"{what}: the gateway was closed ({desc})")
    if isinstance(exc, Ice.TimeoutException):
        return CallTimeoutError(f"{what} timed out ({desc})")

    if phase is Phase.CONNECT:
        if isinstance(
            exc, Glacier2.PermissionDeniedException | omero.SecurityViolation
        ):
            reason = (getattr(exc, "reason", "") or getattr(exc, "message", "")).lower()
            if any(word in reason for word in _DISABLED_WORDS):
                return AccountDisabledError(
                    f"{what}: the account may not log in ({desc})"
                )
            return AuthenticationError(f"{what}: the server refused the credentials")
        if isinstance(exc, Glacier2.CannotCreateSessionException):
            return AuthenticationError(
                f"{what}: the server refused the session ({desc})"
            )
        if isinstance(exc, Ice.DNSException):
            return ServerUnreachableError(
                f"{what}: the host name does not resolve ({desc})"
            )
        if isinstance(exc, Ice.SecurityException):
            return ServerUnreachableError(
                f"{what}: the server's certificate was not accepted ({desc})"
            )
        if isinstance(
            exc,
            Ice.SocketException
            | Ice.ProtocolException
            | Ice.ObjectNotExistException
            | Ice.OperationNotExistException
            | Ice.EndpointParseException,
        ):
            return ServerUnreachableError(f"{what}: no OMERO server answered ({desc})")
        if isinstance(exc, Ice.UnknownLocalException) and "SSL" in str(exc):
            return ServerUnreachableError(
                f"{what}: the secure connection failed ({desc})"
            )

    if isinstance(
        exc,
        omero.RemovedSessionException
        | omero.SessionTimeoutException
        | Glacier2.SessionNotExistException
        | Ice.ObjectNotExistException,
    ):
        return SessionExpiredError(
            f"{what}: the server no longer knows the session ({desc})"
        )
    if isinstance(exc, Ice.SocketException | Ice.CloseConnectionException):
        return ConnectionLostError(
            f"{what}: the connection to the server was lost ({desc})"
        )
    if isinstance(exc, omero.SecurityViolation):
        return PermissionDeniedError(f"{what}: the server refused it ({desc})")
    if isinstance(exc, omero.ServerError | Ice.UnknownException | Ice.UserException):
        return ServerError(f"{what}: the server raised {desc}")
    if isinstance(exc, Ice.LocalException):
        return ConnectionLostError(f"{what}: the connection failed ({desc})")
    return AiomeroError(f"{what} failed: {desc}")


def translate(exc: BaseException, phase: Phase, what: str) -> BaseException:
    """The exception to raise instead of ``exc``, which occurred during
    ``what`` (a short description such as ``"getObjects"``).

    Exceptions that are not about the server or the network (a ``TypeError``
    in the caller's code run through ``AsyncGateway.run``, say) pass through.
    """
    if not isinstance(exc, Ice.Exception | omero.ClientError):
        return exc
    error = _classify(exc, phase, what)
    error.__cause__ = _cause(exc)
    error.__suppress_context__ = True
    return error


def error_text(exc: Any) -> str:
    """The scrubbed one-line description used in log events."""
    return _describe(exc)


def is_refusal(error: BaseException) -> bool:
    """Whether a failed login was turned away before any server answered it.

    Nothing listening on the port, or a connection closed before the first
    reply, is what a server that is still starting does. A refused password,
    a certificate or a name that does not resolve is not, and never counts.
    """
    return isinstance(error, ServerUnreachableError) and isinstance(
        error.__cause__,
        Ice.ConnectionRefusedException
        | Ice.ConnectionLostException
        | Ice.CloseConnectionException,
    )
