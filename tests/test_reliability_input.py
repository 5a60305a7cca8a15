"""Bad input fails before any network call, with an error that names the field.

A wrong type is a TypeError and a wrong value a ValueError. Every case points
at the running emulator, whose counters prove that nothing reached it: no
login attempt for a bad constructor argument or settings file, no call for a
bad argument to a connected gateway.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from aiomero.gateway import AsyncGateway
from aiomero.testing import Emulator
from reliability_support import gateway_for

KEY = "12345678-1234-1234-1234-123456789abc"


def _nothing_reached(emulator: Emulator) -> None:
    snapshot = emulator.counters.snapshot()
    assert snapshot["logins"] == 0
    assert snapshot["joins"] == 0
    assert snapshot["calls"] == {}


@pytest.fixture
async def connected_gateway(omero_emulator: Emulator) -> AsyncIterator[AsyncGateway]:
    """A connected gateway, with the emulator's counters zeroed afterwards."""
    gateway = gateway_for(omero_emulator)
    await gateway.connect()
    omero_emulator.counters.reset()
    yield gateway
    await gateway.close()


# (constructor arguments, error type, field the message must name)
CONSTRUCTOR_CASES: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"port": "4064"}, TypeError, "port"),
    ({"port": 4064.0}, TypeError, "port"),
    ({"port": 0}, ValueError, "port"),
    ({"port": 70000}, ValueError, "port"),
    ({"host": ""}, ValueError, "host"),
    ({"host": "   "}, ValueError, "host"),
    ({"host": None}, TypeError, "host"),
    ({"host": "omero example"}, ValueError, "host"),
    ({"host": "omero.example.org:4064"}, ValueError, "host"),
    ({"host": "127.0.0.1 -t 1"}, ValueError, "host"),
    ({"host": "omero\x00"}, ValueError, "host"),
    ({"passwd": None}, ValueError, "password"),
    ({"passwd": ""}, ValueError, "password"),
    ({"passwd": 1234}, TypeError, "password"),
    ({"username": None}, ValueError, "username"),
    ({"secure": "yes"}, TypeError, "secure"),
    ({"group": True}, TypeError, "group"),
    ({"group": -7}, ValueError, "group"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": float("nan")}, ValueError, "timeout"),
    ({"timeout": "60"}, TypeError, "timeout"),
    ({"timeout": 3e6}, ValueError, "timeout"),
    ({"connect_timeout": 1e12}, ValueError, "connect_timeout"),
    ({"connect_timeout": 0}, ValueError, "connect_timeout"),
    ({"connect_timeout": None}, TypeError, "connect_timeout"),
    ({"close_timeout": -5}, ValueError, "close_timeout"),
    ({"retry_refused": 0}, ValueError, "retry_refused"),
    ({"ssl_ca_file": "/no/such/ca.pem"}, ValueError, "ssl_ca_file"),
    ({"ssl_ca_file": 3}, TypeError, "ssl_ca_file"),
    ({"useragent": 7}, TypeError, "useragent"),
    ({"session_key": "not-a-session-key"}, ValueError, "session_key"),
    ({"session_key": KEY[:-1]}, ValueError, "session_key"),
    ({"session_key": 42}, TypeError, "session_key"),
]


class TestConstructor:
    @pytest.mark.parametrize(
        ("arguments", "error", "field"),
        CONSTRUCTOR_CASES,
        ids=[
            f"{next(iter(a))}={next(iter(a.values()))!r}"
            for a, _, _ in CONSTRUCTOR_CASES
        ],
    )
    def test_a_bad_argument_names_its_field_before_any_login(
        self,
        omero_emulator: Emulator,
        arguments: dict[str, Any],
        error: type[Exception],
        field: str,
    ) -> None:
        """Each bad argument raises its error type naming the field."""
        options: dict[str, Any] = {
            "username": "alice",
            "passwd": "alice-pw",
            "host": omero_emulator.host,
            "port": omero_emulator.port,
            **arguments,
        }
        with pytest.raises(error, match=re.escape(field)) as caught:
            AsyncGateway(**options)
        assert type(caught.value) is error
        _nothing_reached(omero_emulator)

    def test_a_malformed_session_key_is_not_repeated_in_the_error(
        self, omero_emulator: Emulator
    ) -> None:
        """A near-miss may be a real key: the message does not echo it."""
        near_miss = KEY + "0"
        with pytest.raises(ValueError, match="session_key") as caught:
            AsyncGateway.from_session_key(
                near_miss, host=omero_emulator.host, port=omero_emulator.port
            )
        assert near_miss not in str(caught.value)
        assert KEY not in str(caught.value)
        _nothing_reached(omero_emulator)

    def test_a_bad_password_type_does_not_echo_the_value(
        self, omero_emulator: Emulator
    ) -> None:
        """The error about a password names the field, never the value."""
        with pytest.raises(TypeError, match="password") as caught:
            AsyncGateway("alice", b"alice-pw", port=omero_emulator.port)  # type: ignore[arg-type]
        assert "alice-pw" not in str(caught.value)
        _nothing_reached(omero_emulator)


# (a call on a connected gateway, error type, text the message must hold)
CALL_CASES: list[tuple[str, Callable[[AsyncGateway], Any], type[Exception], str]] = [
    ("unknown type", lambda g: g.getObjects("Projcet"), ValueError, "'Projcet'"),
    ("type not str", lambda g: g.getObjects(7), TypeError, "obj_type"),
    (
        "unknown option",
        lambda g: g.getObjects("Project", opts={"limt": 5}),
        ValueError,
        "'limt'",
    ),
    (
        "option type",
        lambda g: g.getObjects("Project", opts={"limit": "5"}),
        TypeError,
        "'limit'",
    ),
    (
        "option value",
        lambda g: g.getObjects("Project", opts={"offset": -1}),
        ValueError,
        "'offset'",
    ),
    (
        "opts not mapping",
        lambda g: g.getObject("Image", 1, opts=[("limit", 1)]),
        TypeError,
        "opts",
    ),
    ("zero timeout", lambda g: g.listProjects(timeout=0), ValueError, "timeout"),
    ("negative timeout", lambda g: g.getUser(timeout=-2), ValueError, "timeout"),
    ("text timeout", lambda g: g.keepAlive(timeout="1"), TypeError, "timeout"),
    ("bad group", lambda g: g.listProjects(group=-3), ValueError, "group"),
    ("empty group", lambda g: g.listProjects(group=" "), ValueError, "group"),
    ("empty query", lambda g: g.projection("  "), ValueError, "query"),
    (
        "page size",
        lambda g: g.iter_objects("Image", page_size=0),
        ValueError,
        "page_size",
    ),
    (
        "paging opts",
        lambda g: g.iter_objects("Image", opts={"limit": 3}),
        ValueError,
        "opts",
    ),
    ("huge timeout", lambda g: g.listProjects(timeout=3e6), ValueError, "timeout"),
    ("oid not int", lambda g: g.getObject("Project", 1.5), TypeError, "oid"),
    ("oid text", lambda g: g.getObject("Project", "abc"), TypeError, "oid"),
    ("ids text", lambda g: g.getObjects("Project", "1,2"), TypeError, "ids"),
    ("ids item", lambda g: g.getObjects("Project", [1, "2"]), TypeError, "ids"),
    ("id too big", lambda g: g.getObject("Project", 2**70), ValueError, "oid"),
    ("su user", lambda g: g.suConn(""), ValueError, "username"),
    ("su ttl", lambda g: g.suConn("bob", ttl=0), ValueError, "ttl"),
]


class TestConnectedGateway:
    @pytest.mark.parametrize(
        ("call", "error", "text"),
        [case[1:] for case in CALL_CASES],
        ids=[case[0] for case in CALL_CASES],
    )
    async def test_a_bad_argument_raises_before_any_call(
        self,
        omero_emulator: Emulator,
        connected_gateway: AsyncGateway,
        call: Callable[[AsyncGateway], Any],
        error: type[Exception],
        text: str,
    ) -> None:
        """The argument is checked on the event loop; nothing is sent."""
        with pytest.raises(error, match=re.escape(text)):
            await call(connected_gateway)
        _nothing_reached(omero_emulator)
        assert connected_gateway.isConnected()

    async def test_a_bad_connect_timeout_raises_before_any_login(
        self, omero_emulator: Emulator
    ) -> None:
        """connect(timeout=...) is checked before a thread or a login."""
        gateway = gateway_for(omero_emulator)
        with pytest.raises(ValueError, match="timeout"):
            await gateway.connect(timeout=0)
        _nothing_reached(omero_emulator)
        assert not gateway.isConnected()

    async def test_a_bad_group_context_raises_before_any_call(
        self, omero_emulator: Emulator, connected_gateway: AsyncGateway
    ) -> None:
        """use_group() checks the group when entered."""
        with pytest.raises(TypeError, match="group"):
            async with connected_gateway.use_group(3.5):  # type: ignore[arg-type]
                pass
        _nothing_reached(omero_emulator)


# (case, YAML text, error type, text the message must hold besides the file
# name). {server} stands for the emulator's host and port, so that a file
# wrongly accepted would point a login at it.
YAML_CASES: list[tuple[str, str, type[Exception], str]] = [
    (
        "unknown key",
        "{server}username: a\npassword: p\npasswrd: p\n",
        ValueError,
        "'passwrd'",
    ),
    ("port as text", "username: a\npassword: p\nport: '4064'\n", TypeError, "port"),
    ("port as list", "username: a\npassword: p\nport: [4064]\n", TypeError, "port"),
    (
        "port out of range",
        "username: a\npassword: p\nport: 70000\n",
        ValueError,
        "port",
    ),
    (
        "secure as number",
        "{server}username: a\npassword: p\nsecure: 3\n",
        TypeError,
        "secure",
    ),
    (
        "secure misspelt",
        "{server}username: a\npassword: p\nsecure: maybe\n",
        ValueError,
        "secure",
    ),
    ("empty host", "username: a\npassword: p\nhost: ''\n", ValueError, "host"),
    ("no password", "{server}username: a\n", ValueError, "password"),
    (
        "password as number",
        "{server}username: a\npassword: 1234\n",
        TypeError,
        "password",
    ),
    ("bad session key", "{server}session_key: abc\n", ValueError, "session_key"),
    (
        "group as list",
        "{server}username: a\npassword: p\ngroup: [3]\n",
        TypeError,
        "group",
    ),
    ("not a mapping", "- username\n- a\n", ValueError, "mapping"),
    ("not YAML", "username: [a\n", ValueError, "YAML"),
]


class TestSettingsFile:
    @pytest.mark.parametrize(
        ("text", "error", "name"),
        [case[1:] for case in YAML_CASES],
        ids=[case[0] for case in YAML_CASES],
    )
    def test_a_bad_settings_file_names_the_file_and_the_field(
        self,
        omero_emulator: Emulator,
        tmp_path: Path,
        text: str,
        error: type[Exception],
        name: str,
    ) -> None:
        """Each fault in a YAML file raises naming the file and the field."""
        server = f"host: {omero_emulator.host}\nport: {omero_emulator.port}\n"
        path = tmp_path / "omero.yaml"
        path.write_text(text.replace("{server}", server))
        with pytest.raises(error) as caught:
            AsyncGateway.from_yaml(path)
        assert type(caught.value) is error
        assert str(path) in str(caught.value)
        assert name in str(caught.value)
        _nothing_reached(omero_emulator)

    def test_a_settings_file_never_shows_its_password_in_an_error(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A wrong field next to the password: the error hides the password."""
        path = tmp_path / "omero.yaml"
        path.write_text("username: alice\npassword: very-secret-pw\nport: nope\n")
        with pytest.raises(TypeError) as caught:
            AsyncGateway.from_yaml(path)
        assert "very-secret-pw" not in str(caught.value)
        _nothing_reached(omero_emulator)
