"""Connection settings: every field checked on the way in, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiomero.settings import (
    ConnectionSettings,
    check_group,
    check_timeout,
    parse_bool,
)

KEY = "0f8fad5b-d9cb-469f-a165-70867728950e"


class TestBooleans:
    @pytest.mark.parametrize(
        "word", ["1", "true", "True", "YES", "on", "y", "t", " yes "]
    )
    def test_true_spellings(self, word: str) -> None:
        """The usual spellings of true read as True, in any case."""
        assert parse_bool(word, "secure") is True

    @pytest.mark.parametrize("word", ["0", "false", "FALSE", "no", "off", "n", "f", ""])
    def test_false_spellings(self, word: str) -> None:
        """The usual spellings of false, and the empty string, read as False."""
        assert parse_bool(word, "secure") is False

    @pytest.mark.parametrize("word", ["maybe", "2", "ja", "truthy"])
    def test_anything_else_is_a_value_error_naming_the_field(self, word) -> None:
        """A word that is neither is refused, with the field's name."""
        with pytest.raises(ValueError, match="OMERO_SECURE"):
            parse_bool(word, "OMERO_SECURE")

    def test_a_non_string_is_a_type_error(self) -> None:
        """A number is not a boolean here."""
        with pytest.raises(TypeError, match="secure"):
            parse_bool(1, "secure")


class TestFromEnv:
    def test_every_variable_is_read(self) -> None:
        """The OMERO_* variables fill the matching fields."""
        settings = ConnectionSettings.from_env(
            {
                "OMERO_USER": "bob",
                "OMERO_PASSWORD": "bob-pw",
                "OMERO_HOST": "omero.example.org",
                "OMERO_PORT": "14064",
                "OMERO_SECURE": "on",
                "OMERO_GROUP": "read-only-lab",
            }
        )
        assert settings == ConnectionSettings(
            "bob", "bob-pw", "omero.example.org", 14064, True, "read-only-lab"
        )

    def test_defaults_without_host_port_or_secure(self) -> None:
        """Missing variables keep the defaults: localhost:4064, not secure."""
        settings = ConnectionSettings.from_env(
            {"OMERO_USER": "bob", "OMERO_PASSWORD": "x"}
        )
        assert (settings.host, settings.port, settings.secure) == (
            "localhost",
            4064,
            False,
        )

    def test_a_session_key_needs_no_credentials(self) -> None:
        """OMERO_SESSION_KEY alone is enough; a numeric group becomes an id."""
        settings = ConnectionSettings.from_env(
            {"OMERO_SESSION_KEY": KEY, "OMERO_GROUP": "-1"}
        )
        assert (settings.session_key, settings.group) == (KEY, -1)

    @pytest.mark.parametrize(
        ("env", "error", "field"),
        [
            ({"OMERO_PORT": "http"}, ValueError, "OMERO_PORT"),
            ({"OMERO_SECURE": "sometimes"}, ValueError, "OMERO_SECURE"),
            ({"OMERO_PORT": "70000"}, ValueError, "port"),
            ({"OMERO_SESSION_KEY": "abc"}, ValueError, "session_key"),
            ({}, ValueError, "username"),
        ],
    )
    def test_bad_variables_are_named(self, env, error, field) -> None:
        """A bad or missing variable is refused naming it."""
        values = {"OMERO_USER": "bob", "OMERO_PASSWORD": "x"} if env else {}
        values.update(env)
        with pytest.raises(error, match=field):
            ConnectionSettings.from_env(values)


class TestFromYaml:
    def write(self, tmp_path: Path, text: str) -> Path:
        path = tmp_path / "omero.yaml"
        path.write_text(text)
        return path

    def test_every_key_is_read(self, tmp_path: Path) -> None:
        """username, password, host, port, secure, group and session_key."""
        path = self.write(
            tmp_path,
            "username: bob\npassword: pw\nhost: h.example.org\nport: 4065\n"
            "secure: yes\ngroup: 3\n",
        )
        settings = ConnectionSettings.from_yaml(path)
        assert settings == ConnectionSettings(
            "bob", "pw", "h.example.org", 4065, True, 3
        )

    @pytest.mark.parametrize(
        ("text", "error", "field"),
        [
            ("username: bob\npassword: x\nuser: bob\n", ValueError, "'user'"),
            ("username: bob\npassword: x\nport: '4064'\n", TypeError, "port"),
            ("username: bob\npassword: x\nsecure: perhaps\n", ValueError, "secure"),
            ("username: bob\npassword: x\nhost: 3\n", TypeError, "host"),
            ("- a list\n", ValueError, "mapping"),
            ("username: [unclosed\n", ValueError, "YAML"),
        ],
    )
    def test_bad_files_name_the_file_and_the_field(
        self, tmp_path: Path, text: str, error, field: str
    ) -> None:
        """Errors name the file and the offending field."""
        path = self.write(tmp_path, text)
        with pytest.raises(error, match=field) as caught:
            ConnectionSettings.from_yaml(path)
        assert str(path) in str(caught.value)

    def test_a_wrong_password_type_does_not_show_the_password(
        self, tmp_path: Path
    ) -> None:
        """A password of the wrong type is refused without repeating it."""
        path = self.write(tmp_path, "username: bob\npassword: 31415926\n")
        with pytest.raises(TypeError, match="password") as caught:
            ConnectionSettings.from_yaml(path)
        assert "31415926" not in str(caught.value)


class TestSecrets:
    def test_repr_hides_the_password_and_the_session_key(self) -> None:
        """Neither secret appears in the settings' repr."""
        by_password = ConnectionSettings("bob", "hunter2-secret")
        by_key = ConnectionSettings(session_key=KEY)
        assert "hunter2-secret" not in repr(by_password)
        assert KEY not in repr(by_key)
        assert "bob" in repr(by_password)


class TestChecks:
    @pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
    def test_a_timeout_must_be_positive_and_finite(self, value) -> None:
        """Zero, negative and infinite timeouts are ValueErrors by name."""
        with pytest.raises(ValueError, match="timeout"):
            check_timeout(value, "timeout")

    def test_a_timeout_may_be_none_only_where_allowed(self) -> None:
        """None means no limit, except where a limit is required."""
        assert check_timeout(None, "timeout") is None
        with pytest.raises(TypeError, match="connect_timeout"):
            check_timeout(None, "connect_timeout", allow_none=False)
        with pytest.raises(TypeError, match="timeout"):
            check_timeout(True, "timeout")

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(3, 3), (-1, -1), ("-1", -1), ("12", 12), (" lab ", "lab"), (None, None)],
    )
    def test_a_group_is_an_id_or_a_name(self, value, expected) -> None:
        """Ids, numeric strings and names are accepted and normalised."""
        assert check_group(value) == expected

    @pytest.mark.parametrize(
        ("value", "error"), [(-2, ValueError), ("", ValueError), (True, TypeError)]
    )
    def test_a_bad_group_is_refused(self, value, error) -> None:
        """Ids below -1, empty names and booleans are refused by name."""
        with pytest.raises(error, match="group"):
            check_group(value)
