"""Fixtures shared by aiomero's tests.

The ``omero_*`` fixtures come from aiomero's own pytest plugin. ``emulator``
and ``gateway`` run a test once per Glacier2 router (the emulator's own and
Debian's ``glacier2router``), for the tests of connections.
``async_gateway`` makes connected AsyncGateways to ``omero_emulator``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from aiomero.testing import Emulator
from aiomero.testing.pytest_plugin import close_gateways, skip_without_glacier2


@pytest.fixture(scope="session", params=["builtin", "glacier2"])
def emulator_server(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    skip_without_glacier2(request.param)
    with Emulator(router=request.param) as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    emulator_server.reset()
    yield emulator_server
    emulator_server.faults.reset()


@pytest.fixture
def gateway(emulator: Emulator) -> Iterator[Callable[..., Any]]:
    """``gateway(user, password, **options)``: a connected BlitzGateway."""
    opened: list[Any] = []

    def connect(username: str = "root", password: str = "omero", **options: Any) -> Any:
        conn = emulator.gateway(username, password, **options)
        assert conn.connect(), conn.getLastError()
        opened.append(conn)
        return conn

    yield connect
    close_gateways(emulator, opened)


@pytest.fixture
async def async_gateway(
    omero_emulator: Emulator,
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await async_gateway(user, **options)``: a connected AsyncGateway of a
    default-catalog user on ``omero_emulator``, closed after the test."""
    from gateway_helpers import gateway_for

    opened: list[Any] = []

    async def connect(username: str = "root", **options: Any) -> Any:
        gateway = gateway_for(omero_emulator, username, **options)
        await gateway.connect()
        opened.append(gateway)
        return gateway

    yield connect
    # Stalls would hold the closing calls; a failed close must not fail teardown.
    omero_emulator.faults.reset()
    for gateway in opened:
        with contextlib.suppress(Exception):
            await gateway.close()
