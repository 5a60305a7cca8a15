"""Helpers of the pool tests."""

from __future__ import annotations

from typing import Any

import pytest

from aiomero import AsyncGatewayPool
from aiomero.testing import Emulator
from gateway_helpers import password


def pool_for(
    emulator: Emulator, user: str = "root", **options: Any
) -> AsyncGatewayPool:
    """A pool of ``user``'s sessions on ``emulator``, not opened yet."""
    return AsyncGatewayPool(
        user, password(user), host=emulator.host, port=emulator.port, **options
    )


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages aiomero logged, oldest first."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("aiomero")]
