"""Sessions of the emulated server, and the client handles that use them.

A :class:`Session` is what a login creates and what its key names: a user, a
current group, a reference count, an idle timeout and a time to live. A
:class:`Handle` is one client's view of a session, the ServiceFactory that a
login or a join returns; several handles may share a session. Handles are
keyed by an id of their own, never by connection, because behind
``glacier2router`` every client shares one connection to the emulator.

Reference counting follows OMERO: a login or join adds a reference;
``ISession.closeSession`` removes one and ends the session at zero; a handle
destroyed after ``detachOnDestroy`` removes one but leaves the session for
its idle timeout, while one destroyed after ``closeOnDestroy`` (the default)
closes.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid as uuidlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import omero

from aiomero._logging import fingerprint, get_logger

__all__ = ["CLOSED", "EXPIRED", "KILLED", "Handle", "Session", "SessionRegistry"]

logger = get_logger()

# Why a session ended; a live session has none.
CLOSED = "closed"
EXPIRED = "expired"
KILLED = "killed"

# Ended session keys remembered so that late calls get the right error.
_TOMBSTONES = 10_000


@dataclass(eq=False)
class Session:
    """One server session; times are in seconds (0 = no limit)."""

    uuid: str = field(repr=False)
    id: int
    user_id: int
    group_id: int
    agent: str
    idle_timeout: float
    time_to_live: float
    started_ms: int
    sudoer_id: int | None = None
    refcount: int = 1
    last_access: float = field(default_factory=time.monotonic)
    created: float = field(default_factory=time.monotonic)
    ended: str | None = None

    @property
    def key_fingerprint(self) -> str:
        """A short stand-in for the key, safe to log."""
        return fingerprint(self.uuid) or ""

    def timed_out(self, now: float) -> bool:
        """Whether the idle timeout or the time to live has passed."""
        if self.idle_timeout and now - self.last_access > self.idle_timeout:
            return True
        return bool(self.time_to_live and now - self.created > self.time_to_live)


@dataclass(eq=False)
class Handle:
    """One client's ServiceFactory on a session.

    ``callback`` is the client's callback proxy (kept, never called);
    ``connection`` names the client connection that opened the handle when
    the emulator is the router, and is None behind ``glacier2router``.
    """

    id: str
    session: Session
    close_on_destroy: bool = True
    callback: Any = None
    connection: str | None = None


class SessionRegistry:
    """Every session and handle of one emulator; safe to use from any thread."""

    def __init__(self, idle_timeout: float = 600.0, time_to_live: float = 0.0) -> None:
        self.idle_timeout = idle_timeout
        self.time_to_live = time_to_live
        self._lock = threading.RLock()
        self._sessions: dict[str, Session] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()
        self._handles: dict[str, Handle] = {}
        self._next_id = 1

    # -- creating and joining -------------------------------------------------

    def create(
        self,
        user_id: int,
        group_id: int,
        agent: str = "",
        idle_timeout: float | None = None,
        time_to_live: float | None = None,
        sudoer_id: int | None = None,
    ) -> Session:
        """Start a session with one reference for ``user_id`` in ``group_id``."""
        with self._lock:
            session = Session(
                uuid=str(uuidlib.uuid4()),
                id=self._next_id,
                user_id=user_id,
                group_id=group_id,
                agent=agent,
                idle_timeout=self.idle_timeout
                if idle_timeout is None
                else idle_timeout,
                time_to_live=self.time_to_live
                if time_to_live is None
                else time_to_live,
                started_ms=int(time.time() * 1000),
                sudoer_id=sudoer_id,
            )
            self._next_id += 1
            self._sessions[session.uuid] = session
        logger.debug(
            "emulator_session_created",
            session=session.key_fingerprint,
            user_id=user_id,
            group_id=group_id,
        )
        return session

    def join(self, key: str) -> Session:
        """Add a reference to the live session ``key`` and return it.

        Raises ``omero.RemovedSessionException`` or
        ``omero.SessionTimeoutException`` for a session that ended, and
        KeyError for a key never seen.
        """
        with self._lock:
            session = self.live(key)
            session.refcount += 1
            session.last_access = time.monotonic()
            return session

    def open_handle(self, session: Session, connection: str | None = None) -> Handle:
        """Give a client a new handle on ``session``."""
        handle = Handle(secrets.token_hex(8), session, connection=connection)
        with self._lock:
            self._handles[handle.id] = handle
        return handle

    # -- lookups --------------------------------------------------------------

    def handle(self, handle_id: str) -> Handle | None:
        """The handle ``handle_id``, or None once destroyed."""
        return self._handles.get(handle_id)

    def get(self, key: str) -> Session | None:
        """The session ``key`` if it is known and has not ended."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and session.timed_out(time.monotonic()):
                self._end(session, EXPIRED)
                return None
            return session

    def live(self, key: str) -> Session:
        """The live session ``key``; raises as :meth:`check` or KeyError."""
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                reason = self._ended.get(key)
                if reason is None:
                    raise KeyError(key)
                raise _ended_error(reason)
            self.check(session)
            return session

    def check(self, session: Session) -> None:
        """Count a use of ``session``, or raise if it has ended.

        Raises ``omero.SessionTimeoutException`` after a timeout and
        ``omero.RemovedSessionException`` after a close or kill.
        """
        now = time.monotonic()
        if session.ended is None and session.timed_out(now):
            with self._lock:
                self._end(session, EXPIRED)
        if session.ended is not None:
            raise _ended_error(session.ended)
        session.last_access = now

    def sessions(self, user_id: int | None = None) -> list[Session]:
        """Live sessions, of ``user_id`` only if given, oldest first."""
        self.sweep()
        with self._lock:
            found = list(self._sessions.values())
        return [s for s in found if user_id is None or s.user_id == user_id]

    def handles(self) -> list[Handle]:
        """Every handle not yet destroyed."""
        with self._lock:
            return list(self._handles.values())

    # -- ending ---------------------------------------------------------------

    def close(self, key: str) -> int:
        """Remove one reference; end the session at zero. Return what is left.

        Raises ``omero.RemovedSessionException`` for a session that already
        ended or was never known.
        """
        with self._lock:
            session = self._sessions.get(key)
            if session is None or session.ended is not None:
                raise omero.RemovedSessionException(message="session already closed")
            session.refcount -= 1
            if session.refcount <= 0:
                session.refcount = 0
                self._end(session, CLOSED)
            return session.refcount

    def kill(self, key: str) -> None:
        """End session ``key`` whatever its references; unknown keys pass."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self._end(session, KILLED)

    def expire(self, key: str) -> None:
        """End session ``key`` as if it had timed out; KeyError if unknown."""
        with self._lock:
            self._end(self._sessions[key], EXPIRED)

    def destroy_handle(self, handle_id: str) -> Handle | None:
        """Forget a handle, detaching from or closing its session."""
        with self._lock:
            handle = self._handles.pop(handle_id, None)
            if handle is None:
                return None
            session = handle.session
            if session.ended is None:
                if handle.close_on_destroy:
                    self.close(session.uuid)
                else:
                    session.refcount = max(session.refcount - 1, 0)
            return handle

    def sweep(self) -> None:
        """End the sessions whose time is up.

        Their handles stay until their clients destroy them, so that a late
        call still learns why its session ended.
        """
        now = time.monotonic()
        with self._lock:
            for session in list(self._sessions.values()):
                if session.timed_out(now):
                    self._end(session, EXPIRED)

    def forget_handles(self) -> None:
        """Forget every handle and leave the sessions as they are.

        What a server restart does: clients lose their connections and
        must join their sessions again.
        """
        with self._lock:
            self._handles.clear()

    def clear(self) -> None:
        """Forget every session, handle and ended key."""
        with self._lock:
            self._sessions.clear()
            self._handles.clear()
            self._ended.clear()

    def _end(self, session: Session, reason: str) -> None:
        if session.ended is None:
            session.ended = reason
            logger.debug(
                "emulator_session_ended", session=session.key_fingerprint, reason=reason
            )
        self._sessions.pop(session.uuid, None)
        self._ended[session.uuid] = session.ended
        while len(self._ended) > _TOMBSTONES:
            self._ended.popitem(last=False)


def _ended_error(reason: str) -> Exception:
    error: Exception
    if reason == EXPIRED:
        error = omero.SessionTimeoutException(message="session timed out")
    else:
        error = omero.RemovedSessionException(message=f"session {reason}")
    return error
