"""An OMERO server emulator for tests: aiomero's and yours.

:class:`Emulator` serves OMERO's wire protocol from a :class:`Catalog`, so
the unmodified ``BlitzGateway`` connects to it as to a real server; its
``faults`` inject latency, stalls, failures, refused and dropped connections
and expired sessions, and its ``counters`` tell what clients did.
:class:`EmulatorProcess` runs it as a child process, :func:`serve` is the
command line (``python -m aiomero.testing``), and the pytest plugin
(:mod:`aiomero.testing.pytest_plugin`) provides fixtures. The guide is
``docs/testing.md``.
"""

from __future__ import annotations

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
