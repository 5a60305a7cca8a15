"""What an emulator has served: logins, joins, calls by operation and endpoint.

Tests read these to check what a client really sent, for instance that one
``BlitzGateway.connect()`` with ``secure=False`` is one login over SSL and one
join over TCP.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["CALLS", "ENDPOINTS", "JOINS", "LIVE_SESSIONS", "LOGINS", "Counters"]

# Keys of Counters.snapshot().
LOGINS = "logins"
JOINS = "joins"
CALLS = "calls"
ENDPOINTS = "endpoints"
LIVE_SESSIONS = "live_sessions"


class Counters:
    """Counts of what clients did, since the start or the last :meth:`reset`.

    Logins and joins count sessions created, by password and by session key;
    failed attempts count as calls of ``createSession`` only. ``calls`` counts
    every remote operation by name, ``endpoints`` by the endpoint the client
    used (``"ssl"`` or ``"tcp"``). ``live_sessions`` is not a count of events
    but the number of sessions open now, which a reset does not change.
    """

    def __init__(self, live_sessions: Callable[[], int] = lambda: 0) -> None:
        self._live_sessions = live_sessions
        self._lock = threading.Lock()
        self._logins = 0
        self._joins = 0
        self._calls: Counter[str] = Counter()
        self._endpoints: Counter[str] = Counter()

    @property
    def logins(self) -> int:
        """Sessions created from a user name and password."""
        return self._logins

    @property
    def joins(self) -> int:
        """Sessions joined by key (``createSession(key, key)``)."""
        return self._joins

    @property
    def live_sessions(self) -> int:
        """Sessions open now: neither closed, killed nor timed out."""
        return self._live_sessions()

    @property
    def calls(self) -> Counter[str]:
        """A copy of the calls per operation name."""
        with self._lock:
            return Counter(self._calls)

    @property
    def endpoints(self) -> Counter[str]:
        """A copy of the calls per endpoint, ``"ssl"`` or ``"tcp"``."""
        with self._lock:
            return Counter(self._endpoints)

    def snapshot(self) -> dict[str, Any]:
        """Every count at once, under the keys of this module's constants."""
        with self._lock:
            return {
                LOGINS: self._logins,
                JOINS: self._joins,
                CALLS: dict(self._calls),
                ENDPOINTS: dict(self._endpoints),
                LIVE_SESSIONS: self._live_sessions(),
            }

    def reset(self) -> None:
        """Start counting again from zero."""
        with self._lock:
            self._logins = self._joins = 0
            self._calls.clear()
            self._endpoints.clear()

    def record_call(self, op: str, endpoint: str) -> None:
        """Count one call of ``op`` that arrived on ``endpoint``."""
        with self._lock:
            self._calls[op] += 1
            self._endpoints[endpoint] += 1

    def record_login(self, join: bool) -> None:
        """Count one session created (``join=False``) or joined."""
        with self._lock:
            if join:
                self._joins += 1
            else:
                self._logins += 1
