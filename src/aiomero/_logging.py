"""aiomero's logging: structlog events through the standard ``logging`` module.

Events go to the stdlib logger ``aiomero``. An application that configured
structlog gets them through its own processors; one that configured nothing
sees them as ``event key=value`` lines, and by Python's defaults only warnings
and above, on stderr. aiomero never configures logging itself.

Session keys work as passwords while a session lives, so they never appear
whole: :func:`fingerprint` gives a short, stable, one-way stand-in, and
:class:`RedactingFilter` scrubs keys and registered passwords from the records
of omero-py's own loggers, which write both.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = [
    "RedactingFilter",
    "debug_enabled",
    "fingerprint",
    "get_logger",
    "install_redaction",
    "redact",
    "register_secret",
    "unregister_secret",
]

LOGGER_NAME = "aiomero"

# OMERO session keys are UUIDs; Ice prints them inside identities and contexts.
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

_secrets: dict[str, int] = {}
_secrets_lock = threading.Lock()


def fingerprint(key: str | None) -> str | None:
    """A short one-way stand-in for a session key, stable for a given key."""
    if not key:
        return None
    return "sk:" + hashlib.sha256(key.encode()).hexdigest()[:10]


def register_secret(secret: str | None) -> None:
    """Scrub ``secret`` from every record of the filtered loggers from now on.

    Registrations are counted, so two gateways sharing a password each
    unregister their own.
    """
    if not secret:
        return
    with _secrets_lock:
        _secrets[secret] = _secrets.get(secret, 0) + 1


def unregister_secret(secret: str | None) -> None:
    if not secret:
        return
    with _secrets_lock:
        left = _secrets.get(secret, 0) - 1
        if left > 0:
            _secrets[secret] = left
        else:
            _secrets.pop(secret, None)


def redact(text: str) -> str:
    """``text`` with session keys fingerprinted and registered secrets masked."""
    text = _UUID.sub(lambda m: fingerprint(m.group(0)) or "", text)
    if _secrets:
        with _secrets_lock:
            secrets = sorted(_secrets, key=len, reverse=True)
        for secret in secrets:
            if secret in text:
                text = _standalone(secret).sub("***", text)
    return text


def _standalone(secret: str) -> re.Pattern[str]:
    # The secret where it stands alone: a password that is also part of a
    # word ("x" in "Exception", "omero" in "aiomero") leaves the word whole.
    before = r"(?<!\w)" if re.match(r"\w", secret[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", secret[-1]) else ""
    return re.compile(before + re.escape(secret) + after)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message so it carries no session key or password."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args do not fit its format
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # The formatted traceback would print the exception's text again.
            exc = record.exc_info[1]
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info)
            )
            record.msg = f"{record.msg} ({type(exc).__name__})"
        return True


_filter = RedactingFilter()
_installed: set[str] = set()


def install_redaction() -> None:
    """Attach the redacting filter to every ``omero`` logger that exists.

    A filter on a logger sees only the records logged on that very logger,
    not those propagated from its children, so each one gets it. Called on
    every connect, which also covers loggers omero-py created since.
    """
    names = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name == "omero" or name.startswith("omero.")
    ]
    names += ["omero", "omero.gateway", "omero.client", "omero.clients"]
    for name in names:
        if name in _installed:
            continue
        logging.getLogger(name).addFilter(_filter)
        _installed.add(name)
    # Our own events pass through the same scrubber, as a second line.
    if LOGGER_NAME not in _installed:
        logging.getLogger(LOGGER_NAME).addFilter(_filter)
        _installed.add(LOGGER_NAME)


def _render(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> str:
    event = event_dict.pop("event", "")
    fields = " ".join(f"{key}={value!r}" for key, value in event_dict.items())
    return f"{event} {fields}" if fields else str(event)


_plain = structlog.wrap_logger(
    logging.getLogger(LOGGER_NAME),
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[structlog.stdlib.filter_by_level, _render],
)


def debug_enabled(log: Any) -> bool:
    """Whether ``log`` emits debug events, whatever kind of logger it is.

    Loggers over the stdlib answer ``isEnabledFor``, structlog's own filtering
    loggers ``is_enabled_for``; one that answers neither is simply asked to
    log, and filters for itself.
    """
    for name in ("isEnabledFor", "is_enabled_for"):
        check = getattr(log, name, None)
        if check is not None:
            return bool(check(logging.DEBUG))
    return True


def get_logger() -> Any:
    """The logger aiomero writes to, chosen at each use.

    When the application configured structlog, its configuration applies;
    otherwise events are rendered as plain lines for the stdlib logger.
    """
    if structlog.is_configured():
        return structlog.get_logger(LOGGER_NAME)
    return _plain
