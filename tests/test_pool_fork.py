"""AsyncGatewayPool across os.fork(): a pool belongs to the process that
opened it; a forked worker opens its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from aiomero import AsyncGatewayPool
from aiomero.testing import Emulator

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

ALICE_PROJECTS = {"alice-private", "bob-private"}


def pool_for(emulator: Emulator) -> AsyncGatewayPool:
    return AsyncGatewayPool(
        "alice", "alice-pw", host=emulator.host, port=emulator.port, min_size=1
    )


@contextlib.contextmanager
def forked(child: Callable[[], str]) -> Iterator[tuple[int, str]]:
    """Run ``child()`` in a forked process; yield its exit status and the text
    it returned (or the error it raised).

    The child always leaves through ``os._exit``: nothing inherited from the
    parent (Ice's threads, the pool's sessions) is torn down twice.
    """
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12 warns about forking a process that has threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_fd)
            try:
                text = child()
                code = 0
            except BaseException as exc:
                text = f"{type(exc).__name__}: {exc}"
            os.write(write_fd, text.encode())
        finally:
            os._exit(code)

    os.close(write_fd)
    try:
        status = wait_child(pid, timeout=60.0)
        with os.fdopen(read_fd, "rb") as pipe:
            yield status, pipe.read().decode()
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def wait_child(pid: int, timeout: float) -> int:
    """The exit status of child ``pid``; kill it if it runs past ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the forked child {pid} did not finish in {timeout} s")


async def test_a_pool_used_after_fork_raises_in_the_child_and_works_in_the_parent(
    omero_emulator: Emulator,
) -> None:
    """In a forked child acquire() raises RuntimeError naming both processes;
    the parent's pool and its session are untouched."""
    parent = os.getpid()
    async with pool_for(omero_emulator) as pool:
        async with pool.acquire() as gw:
            await gw.listProjects()
        sessions = omero_emulator.counters.live_sessions

        def use_inherited_pool() -> str:
            async def acquire() -> None:
                async with pool.acquire():
                    pass

            try:
                asyncio.run(acquire())
            except RuntimeError as exc:
                return f"{os.getpid()}|{exc}"
            raise AssertionError("acquire() worked in the forked child")

        with forked(use_inherited_pool) as (status, text):
            assert status == 0, text
        child, _, message = text.partition("|")
        assert str(parent) in message
        assert child in message
        assert "open a pool in each worker process" in message

        async with pool.acquire() as gw:
            names = {p.name for p in await gw.listProjects()}
        assert names == ALICE_PROJECTS
        assert omero_emulator.counters.live_sessions == sessions


async def test_a_forked_child_opens_a_pool_of_its_own(
    omero_emulator: Emulator,
) -> None:
    """A child forked from a process with an open pool can open and use a new
    pool, as a forked server worker does in its start-up."""
    async with pool_for(omero_emulator) as pool:
        async with pool.acquire() as gw:
            await gw.listProjects()

        def open_own_pool() -> str:
            async def list_projects() -> str:
                async with pool_for(omero_emulator) as own, own.acquire() as gw:
                    return ",".join(sorted(p.name for p in await gw.listProjects()))

            return asyncio.run(list_projects())

        logins = omero_emulator.counters.logins
        with forked(open_own_pool) as (status, text):
            assert status == 0, text
        assert set(text.split(",")) == ALICE_PROJECTS
        assert omero_emulator.counters.logins == logins + 1
