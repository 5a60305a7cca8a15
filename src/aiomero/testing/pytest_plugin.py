"""pytest fixtures for testing code against the OMERO emulator.

Installed with aiomero and loaded by pytest automatically:

``omero_emulator``
    A running :class:`~aiomero.testing.Emulator` with the default catalog,
    made as new for each test: no faults, no sessions, counters at zero. One
    emulator serves the whole test session, so the catalog is shared; do not
    change it from a test (use ``omero_emulator_factory`` instead).
``omero_emulator_server``
    That emulator without the reset (session-scoped).
``omero_emulator_factory``
    ``factory(**options)`` starts a new emulator with the given
    :class:`~aiomero.testing.Emulator` options (a catalog of your own, a
    latency, ...) and stops it after the test.
``omero_gateway``
    ``omero_gateway(username="root", password="omero", **options)`` returns a
    connected ``BlitzGateway`` to ``omero_emulator``, closed after the test.

``--omero-emulator-router=glacier2`` runs the shared emulator behind Debian's
``glacier2router`` (package ``zeroc-glacier2``); tests that use it are
skipped when the router is not installed.

Nothing is imported from omero-py until a fixture is used, so the plugin
costs nothing in test sessions that do not use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aiomero.testing.server import Emulator

__all__ = [
    "close_gateways",
    "omero_emulator",
    "omero_emulator_factory",
    "omero_emulator_server",
    "omero_gateway",
    "skip_without_glacier2",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aiomero", "aiomero OMERO emulator")
    group.addoption(
        "--omero-emulator-router",
        choices=("builtin", "glacier2"),
        default="builtin",
        help="who plays the Glacier2 router for the omero_emulator fixture",
    )


def skip_without_glacier2(router: str) -> None:
    """Skip the calling test when ``router`` is glacier2 and it is missing."""
    from aiomero.testing.glacier2 import GLACIER2_PACKAGE, find_glacier2router

    if router == "glacier2" and find_glacier2router() is None:
        pytest.skip(
            f"glacier2router is not installed (Debian package {GLACIER2_PACKAGE})"
        )


@pytest.fixture(scope="session")
def omero_emulator_server(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """One emulator for the whole test session, not reset between tests."""
    from aiomero.testing.server import Emulator

    router = request.config.getoption("--omero-emulator-router")
    skip_without_glacier2(router)
    with Emulator(router=router) as emulator:
        yield emulator


@pytest.fixture
def omero_emulator(omero_emulator_server: Emulator) -> Iterator[Emulator]:
    """The shared emulator, reset before the test; stalls released after."""
    omero_emulator_server.reset()
    yield omero_emulator_server
    omero_emulator_server.faults.reset()


@pytest.fixture
def omero_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """Start emulators with options of the test's choosing; stop them after."""
    from aiomero.testing.server import Emulator

    started: list[Emulator] = []

    def start(**options: Any) -> Emulator:
        skip_without_glacier2(options.get("router", "builtin"))
        emulator = Emulator(**options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.faults.reset()
        emulator.stop()


@pytest.fixture
def omero_gateway(omero_emulator: Emulator) -> Iterator[Callable[..., Any]]:
    """Connected BlitzGateways to ``omero_emulator``, closed after the test."""
    opened: list[Any] = []

    def connect(username: str = "root", password: str = "omero", **options: Any) -> Any:
        conn = omero_emulator.gateway(username, password, **options)
        if not conn.connect():
            raise AssertionError(f"connect failed: {conn.getLastError()!r}")
        opened.append(conn)
        return conn

    yield connect
    close_gateways(omero_emulator, opened)


def close_gateways(emulator: Emulator, gateways: list[Any]) -> None:
    """Close ``gateways`` after releasing any stall that would block them."""
    emulator.faults.reset()
    for conn in gateways:
        # A failed close must not fail the test's teardown.
        with contextlib.suppress(Exception):
            conn.close()
