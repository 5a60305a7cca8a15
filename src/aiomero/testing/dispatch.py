"""How the emulator serves one remote call: count, fault, run, answer.

Every servant method that serves an operation is written as a plain method
``op(self, call, *args)`` marked with :func:`remote`; :func:`servant` wires
it to Ice's asynchronous dispatch (``op_async(cb, *args, current)``), so the
answer can wait on a timer or a stall without holding a server thread.
Operations the emulator does not implement answer with
``omero.ApiUsageException`` instead of hanging the client.

A few skeletons (the ServiceFactory, parts of the Glacier2 router) declare
synchronous dispatch; :func:`servant` switches the operations given in
``amd_ops`` to asynchronous dispatch with an equivalent operation table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

import Ice
import IcePy
import omero

from aiomero._logging import get_logger
from aiomero.testing.catalog import Caller, Catalog, User

if TYPE_CHECKING:
    from aiomero.testing._scheduler import Scheduler
    from aiomero.testing.counters import Counters
    from aiomero.testing.faults import Faults, Plan
    from aiomero.testing.sessions import Handle, Session, SessionRegistry

__all__ = ["Call", "Runtime", "SessionServant", "amd_operation", "remote", "servant"]

logger = get_logger()

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

# The name the internal adapter has behind glacier2router; calls on it carry
# the client's endpoint type in the context the router adds.
INTERNAL_ADAPTER = "internal"


@dataclass
class Runtime:
    """Everything the servants of one emulator share."""

    catalog: Catalog
    sessions: SessionRegistry
    faults: Faults
    counters: Counters
    scheduler: Scheduler
    config: dict[str, str] = field(default_factory=dict)

    def endpoint_of(self, current: Any) -> str:
        """``"ssl"`` or ``"tcp"``: the endpoint the client called through."""
        name: str = current.adapter.getName()
        if name == INTERNAL_ADAPTER:
            return str(current.ctx.get("_con.type", name))
        return name


class Call:
    """One call being served: its session, handle and Ice context."""

    __slots__ = ("current", "handle", "op", "runtime")

    def __init__(self, runtime: Runtime, op: str, current: Any, handle: Handle | None):
        self.runtime = runtime
        self.op = op
        self.current = current
        self.handle = handle

    @property
    def session(self) -> Session:
        """The caller's session; raises for calls made without one."""
        if self.handle is None:
            raise omero.SecurityViolation(message=f"{self.op} needs a session")
        return self.handle.session

    @property
    def ctx(self) -> dict[str, str]:
        """The Ice context the client sent."""
        return self.current.ctx  # type: ignore[no-any-return]

    @property
    def user(self) -> User:
        """The session's user."""
        return self.runtime.catalog.user(self.session.user_id)

    def caller(self) -> Caller:
        """Who asks and in which group, from ``omero.group`` or the session.

        Raises ``omero.SecurityViolation`` for a group the user is not in
        (admins may use any) and ``omero.ApiUsageException`` for a group
        that is not a number.
        """
        user = self.user
        text = self.ctx.get("omero.group")
        if text is None or text == "":
            return Caller(user, self.session.group_id)
        try:
            group_id = int(text)
        except ValueError:
            raise omero.ApiUsageException(
                message=f"omero.group must be a group id, not {text!r}"
            ) from None
        if group_id != -1 and group_id not in user.group_ids and not user.is_admin:
            raise omero.SecurityViolation(
                message=f"user {user.id} is not a member of group {group_id}"
            )
        return Caller(user, group_id)


@overload
def remote(fn: F) -> F: ...


@overload
def remote(
    *, check_session: bool = True, name: str | None = None
) -> Callable[[F], F]: ...


def remote(
    fn: F | None = None, *, check_session: bool = True, name: str | None = None
) -> Any:
    """Mark a servant method as the implementation of the operation of its name.

    The method receives a :class:`Call` and the operation's arguments and
    returns its result (annotate ``-> None`` for an operation without one).
    With ``check_session=False`` it runs even if the session has ended.
    ``name`` is the name counters and faults know the operation by, when it
    differs from the Slice name.
    """

    def mark(fn: F) -> F:
        marks = {"check_session": check_session, "alias": name}
        fn.__remote__ = marks  # type: ignore[attr-defined]
        return fn

    return mark(fn) if fn is not None else mark


def amd_operation(
    name: str,
    params: tuple[Any, ...] = (),
    returns: Any = None,
    exceptions: tuple[Any, ...] = (),
    idempotent: bool = False,
) -> Any:
    """An Ice operation table like the generated one, but dispatched async."""
    mode = Ice.OperationMode.Idempotent if idempotent else Ice.OperationMode.Normal
    return IcePy.Operation(
        name,
        mode,
        mode,
        True,
        None,
        (),
        tuple(((), t, False, 0) for t in params),
        (),
        None if returns is None else ((), returns, False, 0),
        exceptions,
    )


def servant(skeleton: type, amd_ops: dict[str, Any] | None = None) -> Callable[[C], C]:
    """Class decorator: wire the :func:`remote` methods to ``skeleton``'s
    operations, and answer every other operation with an error."""
    amd_ops = amd_ops or {}

    def wire(cls: C) -> C:
        names = {a[4:] for a in dir(skeleton) if a.startswith("_op_")}
        for name in sorted(names):
            impl = getattr(cls, name, None)
            marks = getattr(impl, "__remote__", None)
            is_async = hasattr(skeleton, name + "_async")
            if impl is not None and marks is not None:
                if not is_async:
                    if name not in amd_ops:
                        raise TypeError(f"{cls.__name__}.{name} needs an AMD table")
                    setattr(cls, "_op_" + name, amd_ops[name])
                setattr(cls, name + "_async", _dispatcher(name, impl, **marks))
            elif is_async:
                setattr(cls, name + "_async", _unsupported_async(name))
            elif impl is getattr(skeleton, name, None):
                # Synchronous operations the class implements itself stay.
                setattr(cls, name, _unsupported_sync(name))
        return cls

    return wire


class SessionServant:
    """Base of servants reached through a session handle.

    The handle id is the identity's name (services) unless a subclass says
    otherwise; a destroyed handle answers ``Ice.ObjectNotExistException``.
    """

    needs_session = True

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def handle_id(self, current: Any) -> str:
        """Which handle a call is for."""
        return current.id.name  # type: ignore[no-any-return]

    def adapt_error(self, error: BaseException) -> BaseException:
        """The form an injected ``error`` takes for this servant's caller."""
        return error

    def resolve(self, op: str, current: Any, check_session: bool) -> Call:
        """The :class:`Call` for ``current``; raises if its session is gone."""
        if not self.needs_session:
            return Call(self.runtime, op, current, None)
        handle = self.runtime.sessions.handle(self.handle_id(current))
        if handle is None:
            raise Ice.ObjectNotExistException()
        if check_session:
            self.runtime.sessions.check(handle.session)
        return Call(self.runtime, op, current, handle)


def _dispatcher(
    op: str, impl: Callable[..., Any], check_session: bool, alias: str | None
) -> Any:
    void = impl.__annotations__.get("return") == "None"
    name = alias or op

    def dispatch(self: SessionServant, cb: Any, *args: Any) -> None:
        runtime = self.runtime
        current = args[-1]
        args = args[:-1]
        runtime.counters.record_call(name, runtime.endpoint_of(current))
        plan = runtime.faults.plan(name) if runtime.faults.armed else None

        # Injected errors replace the call entirely: nothing runs.
        if plan is not None and plan.error is not None:
            error = self.adapt_error(plan.error)
            _answer(runtime, cb, name, plan, False, error, void)
            return
        try:
            call = self.resolve(name, current, check_session)
            result = impl(self, call, *args)
        except (Ice.UserException, Ice.RequestFailedException) as exc:
            _answer(runtime, cb, name, plan, False, exc, void)
            return
        except Exception as exc:
            logger.warning("emulator_call_failed", op=name, error=repr(exc))
            error = omero.InternalException(
                message=f"emulator error in {name}: {exc!r}"
            )
            _answer(runtime, cb, name, plan, False, error, void)
            return
        _answer(runtime, cb, name, plan, True, result, void)

    dispatch.__name__ = op + "_async"
    return dispatch


def _answer(
    runtime: Runtime,
    cb: Any,
    name: str,
    plan: Plan | None,
    ok: bool,
    value: Any,
    void: bool,
) -> None:
    def reply() -> None:
        try:
            if not ok:
                cb.ice_exception(value)
            elif void:
                cb.ice_response()
            else:
                cb.ice_response(value)
        except Exception as exc:
            # A result Ice cannot marshal: tell the client instead of hanging it.
            logger.warning("emulator_reply_failed", op=name, error=repr(exc))
            with contextlib.suppress(Exception):
                cb.ice_exception(omero.InternalException(message=f"bad reply: {exc!r}"))

    if plan is None:
        reply()
        return
    delay = plan.delay

    def later() -> None:
        if delay > 0:
            runtime.scheduler.call_later(delay, reply)
        else:
            reply()

    if plan.stall is not None and plan.stall._hold(later):
        return
    later()


def _unsupported_async(name: str) -> Any:
    def unsupported(self: Any, cb: Any, *args: Any) -> None:
        cb.ice_exception(_unsupported_error(name))

    unsupported.__name__ = name + "_async"
    return unsupported


def _unsupported_sync(name: str) -> Any:
    def unsupported(self: Any, *args: Any) -> None:
        raise _unsupported_error(name)

    unsupported.__name__ = name
    return unsupported


def _unsupported_error(name: str) -> Exception:
    error: Exception = omero.ApiUsageException(
        message=f"{name} is not implemented by the aiomero OMERO emulator"
    )
    return error
