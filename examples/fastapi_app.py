"""A FastAPI service reading OMERO through one AsyncGatewayPool.

The pool opens in the application's lifespan, so each server process (each
worker) has its own, and closes when the server stops. Connection settings
come from ``OMERO_HOST``, ``OMERO_PORT``, ``OMERO_USER`` and
``OMERO_PASSWORD``; ``AIOMERO_POOL_MAX_SIZE`` and ``AIOMERO_POOL_TIMEOUT``
size the pool and bound the wait for a session. Run it with::

    python -m uvicorn examples.fastapi_app:app --port 8000

Every endpoint takes ``?group=`` (an id, a name, or -1 for all the user's
groups): the group its calls run in, for that request only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from aiomero import AsyncGateway, AsyncGatewayPool
from aiomero.errors import (
    AiomeroError,
    CallTimeoutError,
    PermissionDeniedError,
    PoolBusyError,
    PoolClosedError,
    PoolTimeout,
)
from aiomero.settings import ConnectionSettings

log = logging.getLogger(__name__)

# The HTTP status of each aiomero error, the most specific first; any other
# is the server's fault, a 502.
STATUS_OF_ERROR: tuple[tuple[type[AiomeroError], int], ...] = (
    (PermissionDeniedError, 403),
    (PoolTimeout, 503),
    (PoolBusyError, 503),
    (PoolClosedError, 503),
    (CallTimeoutError, 504),
)


def status_of(exc: AiomeroError) -> int:
    """The HTTP status that answers a request failed by ``exc``."""
    for kind, status in STATUS_OF_ERROR:
        if isinstance(exc, kind):
            return status
    return 502


def env_number(
    env: Mapping[str, str], name: str, default: float, kind: type = float
) -> Any:
    """A number of type ``kind`` from the environment, ``default`` when unset."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None


def make_pool(environ: Mapping[str, str] | None = None) -> AsyncGatewayPool:
    """A pool configured by the environment, not yet open."""
    env = os.environ if environ is None else environ
    settings = ConnectionSettings.from_env(env)
    return AsyncGatewayPool(
        factory=lambda: AsyncGateway.from_settings(settings),
        max_size=env_number(env, "AIOMERO_POOL_MAX_SIZE", 8, int),
        timeout=env_number(env, "AIOMERO_POOL_TIMEOUT", 10.0),
    )


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One pool per process, opened before the first request is served: a bad
    # password or an unreachable server stops the start-up here.
    async with make_pool() as pool:
        app.state.pool = pool
        yield


app = FastAPI(title="aiomero example", lifespan=lifespan)


@app.exception_handler(AiomeroError)
async def aiomero_error(request: Request, exc: AiomeroError) -> JSONResponse:
    status = status_of(exc)
    body: dict[str, Any] = {"error": type(exc).__name__}
    if status < 500:
        body["detail"] = str(exc)
    else:
        # What went wrong upstream is for the service's log, not its clients.
        log.warning("request failed: %s: %s", type(exc).__name__, exc)
    return JSONResponse(body, status_code=status)


def group_context(group: str | None = None) -> int | str | None:
    """The ``?group=`` of a request: a group id, -1 or a group name."""
    if group is None:
        return None
    text = group.strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        if number < -1:
            raise HTTPException(400, f"group: {number} is not a group id")
        return number
    if not text:
        raise HTTPException(400, "group must not be empty")
    return text


async def gateway(
    request: Request,
    group: Annotated[int | str | None, Depends(group_context)],
) -> AsyncIterator[AsyncGateway]:
    """A session of the pool, lent for the request, in its group context."""
    pool: AsyncGatewayPool = request.app.state.pool
    async with pool.acquire(group=group) as gw:
        yield gw


Gateway = Annotated[AsyncGateway, Depends(gateway)]


@app.get("/whoami")
async def whoami(gw: Gateway) -> dict[str, Any]:
    """The pool's user and the group this request's calls run in."""
    user = await gw.getUser()
    group = await gw.getGroupFromContext()
    return {
        "user": user.omeName,
        "user_id": user.id,
        "group": group.name,
        "group_id": group.id,
    }


@app.get("/projects")
async def projects(gw: Gateway) -> list[dict[str, Any]]:
    """The projects the user sees in the request's group context."""
    return [{"id": p.id, "name": p.name} for p in await gw.listProjects()]


@app.get("/projects/{project_id}")
async def project(project_id: int, gw: Gateway) -> dict[str, Any]:
    """One project, or 404 when the user cannot see one with that id."""
    found = await gw.getObject("Project", project_id)
    if found is None:
        raise HTTPException(404, f"no project {project_id}")
    return {
        "id": found.id,
        "name": found.name,
        "description": found.description,
        "owner": found.owner_name,
        "group_id": found.group_id,
    }
