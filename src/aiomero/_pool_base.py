"""What every pooled session and share of a pool holds, and the statistics.

A pool keeps its sessions in *shares*: one for the pool's own login, and one
per substituted user (``acquire(user=...)``), so that sessions of different
users never mix. A share counts its sessions, lent or idle or being made,
and queues the tasks waiting for one, first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import math
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gateway import AsyncGateway

__all__ = ["STAT_KEYS", "Member", "Share", "check_count", "jittered"]

# Statistics of a pool, by name. Counters grow from zero; gauges (the
# current state) are computed when asked.
REQUESTS_NUM = "requests_num"
REQUESTS_WAITING = "requests_waiting"
REQUESTS_QUEUED = "requests_queued"
REQUESTS_WAIT_MS = "requests_wait_ms"
REQUESTS_ERRORS = "requests_errors"
SESSIONS_NUM = "sessions_num"
SESSIONS_ERRORS = "sessions_errors"
SESSIONS_LOST = "sessions_lost"
SESSIONS_REPLACED = "sessions_replaced"
KEEPALIVES_NUM = "keepalives_num"
KEEPALIVES_FAILED = "keepalives_failed"
RETURNS_DISCARDED = "returns_discarded"
POOL_MIN = "pool_min"
POOL_MAX = "pool_max"
POOL_SIZE = "pool_size"
POOL_AVAILABLE = "pool_available"

COUNTERS = (
    REQUESTS_NUM,
    REQUESTS_QUEUED,
    REQUESTS_WAIT_MS,
    REQUESTS_ERRORS,
    SESSIONS_NUM,
    SESSIONS_ERRORS,
    SESSIONS_LOST,
    SESSIONS_REPLACED,
    KEEPALIVES_NUM,
    KEEPALIVES_FAILED,
    RETURNS_DISCARDED,
)
GAUGES = (POOL_MIN, POOL_MAX, POOL_SIZE, POOL_AVAILABLE, REQUESTS_WAITING)
STAT_KEYS = COUNTERS + GAUGES


def check_count(value: object, field: str, minimum: int) -> int:
    """An int of at least ``minimum``, else ``TypeError`` or ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{field} must be at least {minimum}, not {value}")
    return value


def jittered(seconds: float, spread: float = 0.1) -> float:
    """``seconds`` moved at random by up to ``spread`` of itself either way,
    so that sessions made together do not all expire or retry together."""
    if not math.isfinite(seconds):
        return seconds
    return seconds * (1.0 + random.uniform(-spread, spread))


@dataclasses.dataclass(eq=False)
class Member:
    """A pooled session and what the pool knows of it."""

    gateway: AsyncGateway
    share: Share
    created: float
    expires: float
    # The last time the server showed the session alive: its login, a call
    # that returned, or a keep-alive.
    last_contact: float
    # The last time a borrower gave it back: what shrinking goes by.
    last_used: float
    # The gateway's count of abandoned calls when it was lent out.
    abandoned_at_lend: int = 0
    # Its count of calls through run() then: such calls may open stateful
    # services (a raw pixels store, say) that the next borrower must not get.
    runs_at_lend: int = 0
    # The default group of its calls between loans, as configure left it.
    default_group: int | str | None = None

    @property
    def fingerprint(self) -> str | None:
        return self.gateway.session_fingerprint


@dataclasses.dataclass(eq=False)
class Share:
    """The sessions of one user in a pool, and the tasks waiting for one.

    ``user`` is None for the pool's own login, else the name of a
    substituted user. ``size`` counts every session of the share, idle, lent
    or being made, so that growing never passes ``max_size``.
    """

    user: str | None
    min_size: int
    max_size: int
    idle: collections.deque[Member] = dataclasses.field(
        default_factory=collections.deque
    )
    lent: set[Member] = dataclasses.field(default_factory=set)
    # Sessions out of the idle queue for a keep-alive or a check.
    checking: set[Member] = dataclasses.field(default_factory=set)
    waiting: collections.deque[asyncio.Future[Member]] = dataclasses.field(
        default_factory=collections.deque
    )
    size: int = 0
    growing: int = 0
    # Fingerprints of dead sessions whose replacements are yet to be made, so
    # that the replacement's log event can name what it replaced.
    replacing: collections.deque[str | None] = dataclasses.field(
        default_factory=collections.deque
    )
    # After a failed attempt to make a session: no new attempt before
    # ``pause_until``, the next pause, and since when attempts fail.
    pause_until: float = 0.0
    pause: float = 0.0
    failing_since: float | None = None
    reported: bool = False

    def label(self) -> str:
        return "own" if self.user is None else f"user:{self.user}"

    def pending_waiters(self) -> int:
        return sum(1 for w in self.waiting if not w.done())

    def describe(self) -> dict[str, Any]:
        return {
            "share": self.label(),
            "size": self.size,
            "idle": len(self.idle),
            "lent": len(self.lent),
            "waiting": self.pending_waiters(),
        }
