"""An OMERO server emulator for tests: aiomero's and yours.

:class:`Emulator` serves OMERO's wire protocol from a :class:`Catalog`, so
the unmodified ``BlitzGateway`` connects to it as to a real server; its
``faults`` inject latency, stalls, failures, refused and dropped connections
and expired sessions, and its ``counters`` tell what clients did.
:class:`EmulatorProcess` runs it as a child process, :func:`serve` is the
command line (``python -m aiomero.testing``), and the pytest plugin
(:mod:`aiomero.testing.pytest_plugin`) provides fixtures. The guide is
``docs/testing.md``.

The names below are imported on first use: importing this package (which
pytest does for the plugin in every test session) costs nothing until a
test asks for the emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiomero.testing.catalog import (
        ALL_ADMIN_PRIVILEGES,
        SYSTEM_GROUP_ID,
        USER_GROUP_ID,
        Caller,
        Catalog,
        Group,
        User,
        default_catalog,
    )
    from aiomero.testing.command import serve
    from aiomero.testing.counters import Counters
    from aiomero.testing.faults import Faults, Stall
    from aiomero.testing.process import EmulatorProcess
    from aiomero.testing.server import Emulator

__all__ = [
    "ALL_ADMIN_PRIVILEGES",
    "SYSTEM_GROUP_ID",
    "USER_GROUP_ID",
    "Caller",
    "Catalog",
    "Counters",
    "Emulator",
    "EmulatorProcess",
    "Faults",
    "Group",
    "Stall",
    "User",
    "default_catalog",
    "serve",
]

_HOMES = {
    "ALL_ADMIN_PRIVILEGES": "catalog",
    "SYSTEM_GROUP_ID": "catalog",
    "USER_GROUP_ID": "catalog",
    "Caller": "catalog",
    "Catalog": "catalog",
    "Group": "catalog",
    "User": "catalog",
    "default_catalog": "catalog",
    "serve": "command",
    "Counters": "counters",
    "Faults": "faults",
    "Stall": "faults",
    "EmulatorProcess": "process",
    "Emulator": "server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
