"""The ``aiomero`` command: settings, failures, whoami, the demo."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from aiomero.cli import EXIT_AUTH, EXIT_UNREACHABLE, EXIT_USAGE
from aiomero.cli._connect import CliError, resolve_target
from aiomero.testing import Emulator
from aiomero.testing.idr import idr_catalog
from cli_run import aiomero, server_args
from crawl_expect import expected, parse


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


class TestSettings:
    def test_options_beat_the_config_file_which_beats_the_environment(
        self, tmp_path: Path
    ) -> None:
        """Each field comes from the first source that sets it."""
        config = tmp_path / "omero.yaml"
        config.write_text("host: config-host\nport: 4100\npassword: from-file\n")
        environ = {
            "OMERO_HOST": "env-host",
            "OMERO_PORT": "4200",
            "OMERO_USER": "env-user",
            "OMERO_PASSWORD": "from-env",
            "OMERO_SECURE": "yes",
        }

        target = resolve_target(
            host=None,
            port=4300,
            username=None,
            secure=None,
            config=config,
            demo_scale=0.01,
            environ=environ,
            interactive=False,
        )

        s = target.settings
        assert not target.embedded
        assert (s.host, s.port, s.username, s.secure) == (
            "config-host",
            4300,
            "env-user",
            True,
        )
        assert s.password == "from-file"

    def test_no_server_anywhere_means_the_embedded_demo_as_root(self) -> None:
        target = resolve_target(
            host=None,
            port=None,
            username="alice",
            secure=None,
            config=None,
            demo_scale=0.02,
            environ={"OMERO_PASSWORD": "x"},
            interactive=False,
        )

        assert target.embedded
        assert target.settings.username == "root"
        assert target.identity()["server"] == "embedded-emulator:idr:0.02"

    def test_a_missing_password_without_a_terminal_is_a_usage_error(self) -> None:
        with pytest.raises(CliError, match="OMERO_PASSWORD") as caught:
            resolve_target(
                host="example.org",
                port=None,
                username="alice",
                secure=None,
                config=None,
                demo_scale=0.01,
                environ={},
                interactive=False,
            )
        assert caught.value.exit_code == EXIT_USAGE


class TestFailures:
    def test_a_wrong_password_exits_3_with_one_line_and_no_traceback(
        self, omero_emulator: Emulator
    ) -> None:
        done = aiomero(
            "crawl",
            *server_args(omero_emulator, "alice"),
            env={"OMERO_PASSWORD": "wrong-secret"},
        )

        assert done.returncode == EXIT_AUTH
        line = one_error_line(done.stderr)
        assert "login refused" in line
        assert "wrong-secret" not in done.stderr
        assert done.stdout == ""

    def test_an_unreachable_server_exits_4_with_one_line(self) -> None:
        done = aiomero(
            "whoami",
            "--host",
            "127.0.0.1",
            "--port",
            str(closed_port()),
            "--user",
            "alice",
            env={"OMERO_PASSWORD": "alice-pw"},
        )

        assert done.returncode == EXIT_UNREACHABLE
        assert "cannot reach 127.0.0.1" in one_error_line(done.stderr)

    def test_no_password_and_no_terminal_exits_2(
        self, omero_emulator: Emulator
    ) -> None:
        done = aiomero("crawl", *server_args(omero_emulator, "alice"))

        assert done.returncode == EXIT_USAGE
        assert "OMERO_PASSWORD" in one_error_line(done.stderr)

    def test_a_bad_shard_is_a_usage_error(self) -> None:
        done = aiomero("crawl", "--shard", "3/2")

        assert done.returncode == EXIT_USAGE
        assert "3/2" in done.stderr


class TestWhoami:
    def test_whoami_prints_user_groups_admin_and_round_trip(
        self, omero_emulator: Emulator
    ) -> None:
        done = aiomero(
            "whoami",
            *server_args(omero_emulator, "alice"),
            env={"OMERO_PASSWORD": "alice-pw"},
        )

        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert re.search(r"^user: +alice \(id 3\)", out, re.M)
        assert re.search(
            r"^groups: +private-lab \(3\), read-only-lab \(4\)$", out, re.M
        )
        assert re.search(r"^admin: +no$", out, re.M)
        rtt = re.search(r"^rtt: +([0-9.]+) ms", out, re.M)
        assert rtt is not None and float(rtt.group(1)) > 0

    def test_whoami_reports_an_administrator(self, omero_emulator: Emulator) -> None:
        done = aiomero(
            "whoami",
            *server_args(omero_emulator, "root"),
            env={"OMERO_PASSWORD": "omero"},
        )

        assert done.returncode == 0, done.stderr
        assert re.search(r"^admin: +yes$", done.stdout, re.M)


class TestDemo:
    def test_with_no_server_the_crawl_runs_on_the_embedded_demo(
        self, tmp_path: Path
    ) -> None:
        """No --host, OMERO_HOST or --config: the embedded IDR-shaped
        emulator is crawled, whole, and stderr says so."""
        output = tmp_path / "demo.jsonl"
        done = aiomero(
            "crawl", "--demo-scale", "0.0005", "-o", str(output), "--progress", "lines"
        )

        assert done.returncode == 0, done.stderr
        assert "embedded OMERO emulator" in done.stderr
        assert "crawl complete" in done.stderr
        found = parse(output.read_bytes().splitlines())
        assert found == expected(idr_catalog(0.0005), "root")
