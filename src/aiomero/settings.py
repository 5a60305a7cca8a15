"""Connection settings: checked once, before any network call.

:class:`ConnectionSettings` holds what a gateway needs to reach a server. It
is built from keyword arguments, from ``OMERO_*`` environment variables or
from a YAML file, and every field is checked on the way in: a wrong type is a
``TypeError`` and a wrong value a ``ValueError``, each naming the field. The
password never appears in its repr.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConnectionSettings", "parse_bool", "parse_session_key"]

_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})

_SESSION_KEY = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

# Ice takes a deadline as a signed 32-bit count of milliseconds.
MAX_SECONDS = 2_147_483

YAML_FIELDS = ("username", "password", "host", "port", "secure", "group", "session_key")


def parse_bool(value: object, field: str) -> bool:
    """Read a boolean written as a bool or as one of the usual spellings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"{field}: {value!r} is not a true or false value")
    raise TypeError(f"{field} must be a bool, not {type(value).__name__}")


def parse_session_key(value: object, field: str = "session_key") -> str:
    """Check that ``value`` has the form of an OMERO session key (a UUID).

    The error message does not repeat the value: a near-miss may still be a
    real key.
    """
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, not {type(value).__name__}")
    if not _SESSION_KEY.match(value.strip()):
        raise ValueError(f"{field} is not a session key (expected a UUID)")
    return value.strip()


def check_timeout(
    value: object, field: str, *, allow_none: bool = True
) -> float | None:
    """A timeout in seconds: a positive finite number, or None for no limit."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{field} must be a number of seconds, not {type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field} must be a positive number of seconds, not {value!r}")
    if value > MAX_SECONDS:
        unlimited = "; None means no limit" if allow_none else ""
        raise ValueError(
            f"{field} must be at most {MAX_SECONDS:,} seconds (Ice's limit, about "
            f"24 days), not {value!r}{unlimited}"
        )
    return float(value)


def check_seconds(value: object, field: str) -> float:
    """A positive number of seconds, no ``None``."""
    checked = check_timeout(value, field, allow_none=False)
    assert checked is not None
    return checked


def _check_host_text(host: str) -> None:
    # The host goes into an Ice endpoint string, where a space or a quote
    # would start another option; a colon belongs only in an IPv6 address.
    if any(c.isspace() or not c.isprintable() or c in "\"'" for c in host):
        raise ValueError(f"host: {host!r} is not a host name or address")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"host: {host!r} is not a host name or address; give the port as port="
            ) from None


def check_group(value: object, field: str = "group") -> int | str | None:
    """A group given by id (``-1`` for every group of the user) or by name."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{field} must be a group id or name, not bool")
    if isinstance(value, int):
        if value < -1:
            raise ValueError(f"{field}: {value} is not a group id")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{field} must not be empty")
        if re.fullmatch(r"-?\d+", text):
            return check_group(int(text), field)
        return text
    raise TypeError(f"{field} must be a group id or name, not {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class ConnectionSettings:
    """Where and as whom to connect. Immutable; the password is never shown."""

    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    host: str = "localhost"
    port: int = 4064
    secure: bool = False
    group: int | str | None = None
    session_key: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str):
            raise TypeError(f"host must be a str, not {type(self.host).__name__}")
        if not self.host.strip():
            raise ValueError("host must not be empty")
        _check_host_text(self.host)
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise TypeError(f"port must be an int, not {type(self.port).__name__}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, not {self.port}")
        if not isinstance(self.secure, bool):
            raise TypeError(f"secure must be a bool, not {type(self.secure).__name__}")
        object.__setattr__(self, "group", check_group(self.group))
        if self.session_key is not None:
            object.__setattr__(self, "session_key", parse_session_key(self.session_key))
            return
        for field in ("username", "password"):
            value = getattr(self, field)
            if value is None:
                raise ValueError(f"{field} is required unless a session key is given")
            if not isinstance(value, str):
                raise TypeError(f"{field} must be a str, not {type(value).__name__}")
            if not value:
                raise ValueError(f"{field} must not be empty")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> ConnectionSettings:
        """Build settings from a mapping of the YAML field names."""
        unknown = sorted(set(data) - set(YAML_FIELDS))
        if unknown:
            raise ValueError(
                f"{source}: unknown field {unknown[0]!r}; "
                f"known fields: {', '.join(YAML_FIELDS)}"
            )
        values = dict(data)
        if "port" in values and isinstance(values["port"], str):
            raise TypeError(f"{source}: port must be an int, not str")
        if "secure" in values:
            values["secure"] = parse_bool(values["secure"], f"{source}: secure")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{source}: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """Build settings from ``OMERO_USER``, ``OMERO_PASSWORD``, ``OMERO_HOST``,
        ``OMERO_PORT``, ``OMERO_SECURE``, ``OMERO_GROUP`` and
        ``OMERO_SESSION_KEY``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        names = {
            "username": "OMERO_USER",
            "password": "OMERO_PASSWORD",
            "host": "OMERO_HOST",
            "group": "OMERO_GROUP",
            "session_key": "OMERO_SESSION_KEY",
        }
        for field, name in names.items():
            if env.get(name):
                values[field] = env[name]
        if env.get("OMERO_PORT"):
            text = env["OMERO_PORT"].strip()
            if not text.isdigit():
                raise ValueError(f"OMERO_PORT: {text!r} is not a port number")
            values["port"] = int(text)
        if "OMERO_SECURE" in env:
            values["secure"] = parse_bool(env["OMERO_SECURE"], "OMERO_SECURE")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"environment: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> ConnectionSettings:
        """Build settings from a YAML mapping of ``username``, ``password``,
        ``host``, ``port``, ``secure``, ``group`` and ``session_key``."""
        file = Path(path)
        try:
            data = yaml.safe_load(file.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(
                f"{file}: not valid YAML ({exc.__class__.__name__})"
            ) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"{file}: expected a mapping of connection fields")
        return cls.from_mapping(data, str(file))
