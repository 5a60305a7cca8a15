"""Fixtures shared by aiomero's tests.

The ``omero_*`` fixtures come from aiomero's own pytest plugin. ``emulator``
and ``gateway`` run a test once per Glacier2 router (the emulator's own and
Debian's ``glacier2router``), for the tests of connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
