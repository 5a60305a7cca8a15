"""An OMERO server emulator for tests: aiomero's and yours."""

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
