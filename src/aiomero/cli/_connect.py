"""Where the command line connects, and how failures become exit statuses.

Settings come, field by field, from the command-line options, then the YAML
file given with ``--config``, then the ``OMERO_*`` environment variables;
the first that sets a field wins. The password is never an option: it comes
from the file, from ``OMERO_PASSWORD``, or from a prompt when standard input
is a terminal. With no connection setting given anywhere, commands run
against an emulator started inside the process, with an IDR-shaped demo
catalog; settings given without a host are a usage error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from ..errors import (
    AuthenticationError,
    CallTimeoutError,
    ConnectionLostError,
    PermissionDeniedError,
    ServerUnreachableError,
    SessionExpiredError,
)
from ..settings import ConnectionSettings, parse_bool

__all__ = [
    "EXIT_AUTH",
    "EXIT_ERRORS",
    "EXIT_INTERRUPTED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CliError",
    "FiniteFloatRange",
    "Target",
    "connection_options",
    "exit_for",
    "resolve_target",
    "running_target",
    "usage_errors",
]

EXIT_ERRORS = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130

#: The demo's user; the emulator's catalogs all have it.
DEMO_USER, DEMO_PASSWORD = "root", "omero"

F = TypeVar("F", bound=Callable[..., Any])

_ENV_FIELDS = {
    "username": "OMERO_USER",
    "password": "OMERO_PASSWORD",
    "host": "OMERO_HOST",
}


class CliError(click.ClickException):
    """A failure reported as one line on stderr, with its own exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_ERRORS) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


class FiniteFloatRange(click.FloatRange):
    """A float option in a range, which ``nan``, ``inf`` and ``-inf`` are not."""

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number.", param, ctx)
        return number


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Turn the ``ValueError`` or ``TypeError`` with which the library
    rejects a value given on the command line into a one-line usage error."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _reason(exc: BaseException) -> str:
    # The gateway's messages start by naming the call and the address, which
    # the command's own line names already.
    text = str(exc)
    if text.startswith("connect to ") and ": " in text:
        text = text.split(": ", 1)[1]
    return text


def exit_for(exc: BaseException, where: str) -> CliError:
    """The one-line error and exit status for a server failure at ``where``."""
    reason = _reason(exc)
    if isinstance(exc, AuthenticationError):
        return CliError(f"login refused by {where}: {reason}", EXIT_AUTH)
    if isinstance(exc, ServerUnreachableError):
        return CliError(f"cannot reach {where}: {reason}", EXIT_UNREACHABLE)
    if isinstance(exc, ConnectionLostError | SessionExpiredError):
        return CliError(f"lost the server at {where}: {reason}", EXIT_UNREACHABLE)
    if isinstance(exc, CallTimeoutError):
        return CliError(f"no answer from {where}: {reason}", EXIT_UNREACHABLE)
    if isinstance(exc, PermissionDeniedError):
        return CliError(f"permission denied by {where}: {reason}", EXIT_USAGE)
    return CliError(f"{type(exc).__name__} from {where}: {reason}", EXIT_ERRORS)


@dataclasses.dataclass(frozen=True)
class Target:
    """The server a command uses: given settings, or the embedded demo."""

    settings: ConnectionSettings
    embedded: bool = False
    demo_scale: float = 0.0

    @property
    def where(self) -> str:
        s = self.settings
        return "the embedded emulator" if self.embedded else f"{s.host}:{s.port}"

    def identity(self) -> dict[str, Any]:
        """What names this server and user in a checkpoint."""
        server = (
            f"embedded-emulator:idr:{self.demo_scale}"
            if self.embedded
            else f"{self.settings.host}:{self.settings.port}"
        )
        return {"server": server, "user": self.settings.username}


def connection_options(command: F) -> F:
    """Add ``--host``, ``--port``, ``--user``, ``--secure`` and ``--config``."""
    decorators = [
        click.option("--host", help="OMERO server host [env: OMERO_HOST]"),
        click.option(
            "--port", type=click.IntRange(1, 65535), help="port [default: 4064]"
        ),
        click.option("--user", "username", help="user name [env: OMERO_USER]"),
        click.option(
            "--secure/--insecure",
            default=None,
            help="keep every call on SSL, or switch to plain TCP after the "
            "login [env: OMERO_SECURE; default: insecure]",
        ),
        click.option(
            "--config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="YAML file of username, password, host, port, secure",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {
        field: environ[name] for field, name in _ENV_FIELDS.items() if environ.get(name)
    }
    port = environ.get("OMERO_PORT", "").strip()
    if port:
        if not port.isdigit():
            raise CliError(f"OMERO_PORT: {port!r} is not a port number", EXIT_USAGE)
        values["port"] = int(port)
    if environ.get("OMERO_SECURE", "").strip():
        try:
            values["secure"] = parse_bool(environ["OMERO_SECURE"], "OMERO_SECURE")
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    return values


def _config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise CliError(f"{path}: cannot read (not UTF-8 text)", EXIT_USAGE) from None
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(
            f"{path}: cannot read ({type(exc).__name__})", EXIT_USAGE
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CliError(f"{path}: expected a mapping of connection fields", EXIT_USAGE)
    # A config file may name a session or a group; the command line does not
    # use either, but they are not errors.
    data.pop("session_key", None)
    data.pop("group", None)
    return data


def resolve_target(
    *,
    host: str | None,
    port: int | None,
    username: str | None,
    secure: bool | None,
    config: Path | None,
    demo_scale: float,
    environ: Mapping[str, str] | None = None,
    interactive: bool | None = None,
) -> Target:
    """The server and credentials the options, file and environment give.

    With no connection setting given by any of them (not even an empty
    config file), the embedded demo (``root``). Raises :class:`CliError`
    (exit status 2) for settings without a host, for a missing user name or
    password that cannot be prompted for, and for invalid values.
    """
    env = os.environ if environ is None else environ
    values = _environment(env)
    if config is not None:
        values.update(_config_file(config))
    given = {"host": host, "port": port, "username": username, "secure": secure}
    values.update({k: v for k, v in given.items() if v is not None})

    if "host" not in values:
        if values or config is not None:
            raise CliError(
                "no host: give --host, OMERO_HOST or `host` in the config file",
                EXIT_USAGE,
            )
        settings = ConnectionSettings(
            username=DEMO_USER, password=DEMO_PASSWORD, host="127.0.0.1"
        )
        return Target(settings, embedded=True, demo_scale=demo_scale)

    tty = sys.stdin.isatty() if interactive is None else interactive
    for field, prompt in (("username", "User"), ("password", "Password")):
        if values.get(field):
            continue
        if not tty:
            source = "OMERO_USER" if field == "username" else "OMERO_PASSWORD"
            raise CliError(
                f"no {field}: set {source}, put it in the --config file"
                + (", or use --user" if field == "username" else "")
                + ", or run on a terminal to be asked",
                EXIT_USAGE,
            )
        values[field] = click.prompt(
            prompt, hide_input=field == "password", err=True, type=str
        )
    with usage_errors():
        settings = ConnectionSettings.from_mapping(values, "connection settings")
    return Target(settings)


@contextlib.contextmanager
def running_target(target: Target) -> Iterator[ConnectionSettings]:
    """The target's settings, with the embedded emulator running if it is
    the demo; the emulator stops when the block ends."""
    if not target.embedded:
        yield target.settings
        return

    from ..testing import Emulator
    from ..testing.idr import idr_catalog

    click.echo(
        "no connection settings given: using an embedded "
        f"OMERO emulator with the IDR-shaped demo catalog at scale "
        f"{target.demo_scale}, as {DEMO_USER}",
        err=True,
    )
    with Emulator(catalog=idr_catalog(target.demo_scale)) as emulator:
        yield dataclasses.replace(
            target.settings, host=emulator.host, port=emulator.port
        )
