"""An aiohttp service reading OMERO through one AsyncGatewayPool.

The pool opens in a cleanup context, so each server process (each worker)
has its own, and closes when the server stops. Connection settings come from
``OMERO_HOST``, ``OMERO_PORT``, ``OMERO_USER`` and ``OMERO_PASSWORD``;
``AIOMERO_POOL_MAX_SIZE`` and ``AIOMERO_POOL_TIMEOUT`` size the pool and
bound the wait for a session. Run it with::

    python -m aiohttp.web -H 127.0.0.1 -P 8080 examples.aiohttp_app:make_app

or ``python examples/aiohttp_app.py [port]``. Every endpoint takes
``?group=`` (an id, a name, or -1 for all the user's groups): the group its
calls run in, for that request only.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

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

POOL = web.AppKey("pool", AsyncGatewayPool)

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


async def omero_pool(app: web.Application) -> AsyncIterator[None]:
    # One pool per process, opened before the first request is served: a bad
    # password or an unreachable server stops the start-up here.
    async with make_pool() as pool:
        app[POOL] = pool
        yield


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def aiomero_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AiomeroError as exc:
        status = status_of(exc)
        body: dict[str, Any] = {"error": type(exc).__name__}
        if status < 500:
            body["detail"] = str(exc)
        else:
            # What went wrong upstream is for the service's log, not its clients.
            log.warning("request failed: %s: %s", type(exc).__name__, exc)
        return web.json_response(body, status=status)


def group_context(request: web.Request) -> int | str | None:
    """The ``?group=`` of a request: a group id, -1 or a group name."""
    group = request.query.get("group")
    if group is None:
        return None
    text = group.strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        if number < -1:
            raise bad_request(f"group: {number} is not a group id")
        return number
    if not text:
        raise bad_request("group must not be empty")
    return text


def bad_request(detail: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=web.json_response({"detail": detail}).text,
        content_type="application/json",
    )


routes = web.RouteTableDef()


@routes.get("/whoami")
async def whoami(request: web.Request) -> web.Response:
    """The pool's user and the group this request's calls run in."""
    async with request.app[POOL].acquire(group=group_context(request)) as gw:
        user = await gw.getUser()
        group = await gw.getGroupFromContext()
    return web.json_response(
        {
            "user": user.omeName,
            "user_id": user.id,
            "group": group.name,
            "group_id": group.id,
        }
    )


@routes.get("/projects")
async def projects(request: web.Request) -> web.Response:
    """The projects the user sees in the request's group context."""
    async with request.app[POOL].acquire(group=group_context(request)) as gw:
        found = await gw.listProjects()
    return web.json_response([{"id": p.id, "name": p.name} for p in found])


@routes.get(r"/projects/{project_id:\d+}")
async def project(request: web.Request) -> web.Response:
    """One project, or 404 when the user cannot see one with that id."""
    project_id = int(request.match_info["project_id"])
    async with request.app[POOL].acquire(group=group_context(request)) as gw:
        found = await gw.getObject("Project", project_id)
    if found is None:
        return web.json_response({"detail": f"no project {project_id}"}, status=404)
    return web.json_response(
        {
            "id": found.id,
            "name": found.name,
            "description": found.description,
            "owner": found.owner_name,
            "group_id": found.group_id,
        }
    )


def make_app(argv: list[str] | None = None) -> web.Application:
    """The application; ``python -m aiohttp.web`` passes its extra ``argv``."""
    app = web.Application(middlewares=[aiomero_errors])
    app.cleanup_ctx.append(omero_pool)
    app.add_routes(routes)
    return app


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    web.run_app(make_app(), host="127.0.0.1", port=port)
