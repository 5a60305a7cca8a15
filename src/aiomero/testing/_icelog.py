"""Ice's own log messages, sent to the ``aiomero`` logger.

Without it, Ice writes warnings about connections and dispatch straight to
the test process's stderr; through the logger they obey the application's
logging set-up, with session keys scrubbed like every aiomero event.
"""

from __future__ import annotations

from typing import Any

import Ice

from aiomero._logging import get_logger, redact

__all__ = ["IceLogger"]

logger = get_logger()


class IceLogger(Ice.Logger):  # type: ignore[misc]
    """An ``Ice.Logger`` that forwards to structlog events."""

    def __init__(self, prefix: str = "emulator") -> None:
        super().__init__()
        self._prefix = prefix

    def _print(self, message: str) -> None:
        logger.info("emulator_ice_message", message=redact(message))

    def trace(self, category: str, message: str) -> None:
        logger.debug("emulator_ice_trace", category=category, message=redact(message))

    def warning(self, message: str) -> None:
        logger.warning("emulator_ice_warning", message=redact(message))

    def error(self, message: str) -> None:
        logger.error("emulator_ice_error", message=redact(message))

    def getPrefix(self) -> str:
        return self._prefix

    def cloneWithPrefix(self, prefix: str) -> Any:
        return IceLogger(prefix)
