"""Differences between the supported Python versions."""

from __future__ import annotations

import asyncio
import sys
from typing import TypeVar

__all__ = ["TIMEOUT_ERRORS", "timeout", "wait_future"]

T = TypeVar("T")

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout  # type: ignore[import-not-found,unused-ignore]

TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, asyncio.TimeoutError)


async def wait_future(future: asyncio.Future[T], deadline: float | None) -> T:
    """Await ``future`` for up to ``deadline`` seconds (None: no limit).

    On expiry the future is cancelled and the built-in ``TimeoutError`` (or
    ``asyncio.TimeoutError`` on 3.10) is raised; an error the future itself
    raised, a timeout included, propagates as it is.
    """
    if deadline is None:
        return await future
    async with timeout(deadline):
        return await future
