"""The web-framework examples, run as real server processes against the
emulator and called over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aiomero.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent

# alice's projects in the default catalog, by group context: her default
# group private-lab (she leads it, so she sees bob's too) and read-only-lab.
PRIVATE_LAB = {"alice-private", "bob-private"}
READ_ONLY_LAB = {"bob-shared", "alice-shared"}


def uvicorn_command(port: int, *options: str) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "examples.fastapi_app:app"),
        *("--host", "127.0.0.1", "--port", str(port), *options),
    ]


def aiohttp_command(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port)),
        "examples.aiohttp_app:make_app",
    ]


APPS: dict[str, Callable[..., list[str]]] = {
    "fastapi": uvicorn_command,
    "aiohttp": aiohttp_command,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AppServer:
    """One example app served by its framework in a child process."""

    def __init__(
        self,
        app: str,
        emulator: Emulator,
        log: Path,
        options: tuple[str, ...] = (),
        **env: str | int,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        # Only the settings given here reach the app, not the test runner's.
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OMERO_", "AIOMERO_"))
        }
        environ.update(
            OMERO_HOST=emulator.host,
            OMERO_PORT=str(emulator.port),
            OMERO_USER="alice",
            OMERO_PASSWORD="alice-pw",
        )
        environ.update({key: str(value) for key, value in env.items()})
        with log.open("w") as out:
            self.process = subprocess.Popen(
                APPS[app](self.port, *options),
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> AppServer:
        """Return once the server answers HTTP; fail if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the app server exited:\n{self.output}")
            try:
                httpx.get(f"{self.url}/whoami", timeout=5.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the app server did not answer:\n{self.output}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the app server did not exit in {timeout} s:\n{self.output}"
            ) from None

    def kill(self) -> None:
        """Kill the server and any worker it started (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., AppServer]]:
    """``serve(app, emulator, *options, **env)``: an app server, killed after."""
    started: list[AppServer] = []

    def start(
        app: str, emulator: Emulator, *options: str, **env: str | int
    ) -> AppServer:
        log = tmp_path / f"{app}-{len(started)}.log"
        server = AppServer(app, emulator, log, options, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def examples_emulator() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module", params=sorted(APPS))
def app_url(
    request: pytest.FixtureRequest,
    examples_emulator: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The URL of an example app shared by the tests of one framework."""
    log = tmp_path_factory.mktemp("app") / f"{request.param}.log"
    server = AppServer(request.param, examples_emulator, log)
    try:
        yield server.wait_ready().url
    finally:
        server.kill()


def names(rows: list[dict[str, Any]]) -> set[str]:
    return {row["name"] for row in rows}


class TestEndpoints:
    async def test_projects_lists_the_users_projects_in_her_group(
        self, app_url: str
    ) -> None:
        """GET /projects returns the projects of alice's default group."""
        async with httpx.AsyncClient(base_url=app_url) as client:
            response = await client.get("/projects")
        assert response.status_code == 200
        assert names(response.json()) == PRIVATE_LAB

    async def test_group_query_sets_the_group_of_one_request(
        self, app_url: str
    ) -> None:
        """?group= by name, by id or -1 changes that request's projects only."""
        async with httpx.AsyncClient(base_url=app_url) as client:
            by_name = await client.get("/projects", params={"group": "read-only-lab"})
            by_id = await client.get("/projects", params={"group": "4"})
            every = await client.get("/projects", params={"group": "-1"})
            after = await client.get("/projects")
        assert names(by_name.json()) == READ_ONLY_LAB
        assert names(by_id.json()) == READ_ONLY_LAB
        assert names(every.json()) == PRIVATE_LAB | READ_ONLY_LAB
        assert names(after.json()) == PRIVATE_LAB

    async def test_whoami_names_the_user_and_the_requests_group(
        self, app_url: str
    ) -> None:
        """GET /whoami is alice in private-lab, or in the group asked for."""
        async with httpx.AsyncClient(base_url=app_url) as client:
            plain = await client.get("/whoami")
            shared = await client.get("/whoami", params={"group": "read-only-lab"})
        assert plain.json() == {
            "user": "alice",
            "user_id": 3,
            "group": "private-lab",
            "group_id": 3,
        }
        assert shared.json()["group"] == "read-only-lab"

    async def test_project_by_id_or_404(self, app_url: str) -> None:
        """GET /projects/{id} returns the project, 404 for an unknown id and
        for a project outside the request's group."""
        async with httpx.AsyncClient(base_url=app_url) as client:
            every = (await client.get("/projects", params={"group": "-1"})).json()
            ids = {row["name"]: row["id"] for row in every}
            own = await client.get(f"/projects/{ids['alice-private']}")
            missing = await client.get(f"/projects/{max(ids.values()) + 1000}")
            elsewhere = await client.get(f"/projects/{ids['bob-shared']}")
            found = await client.get(
                f"/projects/{ids['bob-shared']}", params={"group": "-1"}
            )
        assert own.status_code == 200
        assert own.json()["name"] == "alice-private"
        assert own.json()["owner"] == "alice"
        assert missing.status_code == 404
        assert elsewhere.status_code == 404
        assert found.status_code == 200
        assert found.json()["owner"] == "bob"

    async def test_a_group_the_user_is_not_in_is_403(self, app_url: str) -> None:
        """?group= of a group alice is not a member of answers 403 naming it."""
        async with httpx.AsyncClient(base_url=app_url) as client:
            response = await client.get("/projects", params={"group": "annotate-lab"})
        assert response.status_code == 403
        assert response.json()["error"] == "PermissionDeniedError"
        assert "annotate-lab" in response.json()["detail"]

    async def test_a_malformed_group_is_400(self, app_url: str) -> None:
        """?group=-5 is refused as a bad request."""
        async with httpx.AsyncClient(base_url=app_url) as client:
            response = await client.get("/projects", params={"group": "-5"})
        assert response.status_code == 400
        assert "group" in response.json()["detail"]

    async def test_fifty_concurrent_requests_succeed_on_a_few_sessions(
        self, app_url: str, examples_emulator: Emulator
    ) -> None:
        """50 simultaneous requests in three group contexts each get their own
        group's projects, served by at most the pool's 8 sessions."""
        contexts = [
            ({}, PRIVATE_LAB),
            ({"group": "read-only-lab"}, READ_ONLY_LAB),
            ({"group": "-1"}, PRIVATE_LAB | READ_ONLY_LAB),
        ]
        asked = [contexts[i % 3] for i in range(50)]
        logins = examples_emulator.counters.logins
        async with httpx.AsyncClient(base_url=app_url, timeout=60.0) as client:
            responses = await asyncio.gather(
                *(client.get("/projects", params=query) for query, _ in asked)
            )
        assert [r.status_code for r in responses] == [200] * 50
        assert [names(r.json()) for r in responses] == [want for _, want in asked]
        assert examples_emulator.counters.logins - logins <= 8


@pytest.mark.parametrize("app", sorted(APPS))
class TestLifecycle:
    @pytest.mark.parametrize(
        "signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
    )
    async def test_stopping_the_server_closes_the_pool(
        self,
        app: str,
        signum: signal.Signals,
        serve: Callable[..., AppServer],
        omero_emulator_factory: Callable[..., Emulator],
    ) -> None:
        """SIGTERM or SIGINT ends the server cleanly and its pool's sessions
        are closed on the server before it exits."""
        emulator = omero_emulator_factory()
        server = serve(app, emulator).wait_ready()
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/projects")).status_code == 200
        assert emulator.counters.live_sessions >= 1

        # A server may end by raising the signal again once it has shut down.
        server.process.send_signal(signum)
        assert server.wait_exit() in (0, -signum), server.output
        assert "Traceback" not in server.output
        assert emulator.counters.live_sessions == 0, server.output

    async def test_an_exhausted_pool_answers_503(
        self,
        app: str,
        serve: Callable[..., AppServer],
        omero_emulator_factory: Callable[..., Emulator],
    ) -> None:
        """With its one session held by a stalled request, another request
        gets 503 after the pool's timeout; the stalled one then succeeds."""
        emulator = omero_emulator_factory()
        server = serve(
            app, emulator, AIOMERO_POOL_MAX_SIZE=1, AIOMERO_POOL_TIMEOUT=1
        ).wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as client:
            with emulator.faults.stall("findAllByQuery") as stall:
                held = asyncio.create_task(client.get("/projects"))
                assert await asyncio.to_thread(stall.wait_held, 1, 30.0)
                refused = await client.get("/projects")
            answered = await held
        assert refused.status_code == 503
        assert refused.json() == {"error": "PoolTimeout"}
        assert answered.status_code == 200
        assert names(answered.json()) == PRIVATE_LAB

    def test_a_wrong_password_stops_the_start_up_without_showing_it(
        self,
        app: str,
        serve: Callable[..., AppServer],
        omero_emulator_factory: Callable[..., Emulator],
    ) -> None:
        """The server exits with an error naming AuthenticationError, and the
        password appears nowhere in its output."""
        emulator = omero_emulator_factory()
        server = serve(app, emulator, OMERO_PASSWORD="not-alices-password")
        status = server.wait_exit(timeout=60.0)
        assert status != 0
        assert "AuthenticationError" in server.output
        assert "not-alices-password" not in server.output


def test_uvicorn_workers_open_a_pool_each_and_close_them_on_stop(
    serve: Callable[..., AppServer],
    omero_emulator_factory: Callable[..., Emulator],
) -> None:
    """uvicorn --workers 2 runs the lifespan in each worker: two pools, one
    session each, all closed when the server is stopped."""
    emulator = omero_emulator_factory()
    server = serve("fastapi", emulator, "--workers", "2").wait_ready()
    deadline = time.monotonic() + 60.0
    while emulator.counters.live_sessions < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert emulator.counters.live_sessions == 2, server.output
    assert emulator.counters.logins == 2

    server.process.send_signal(signal.SIGTERM)
    server.wait_exit()
    assert emulator.counters.live_sessions == 0, server.output
