"""The ``aiomero`` command: settings, failures, whoami, the demo, the emulator."""

from __future__ import annotations

import queue
import re
import shlex
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest
from omero.gateway import BlitzGateway

from aiomero.cli import EXIT_AUTH, EXIT_UNREACHABLE, EXIT_USAGE
from aiomero.cli._connect import CliError, resolve_target
from aiomero.testing import Emulator, default_catalog
from aiomero.testing.command import READY_PREFIX
from aiomero.testing.idr import idr_catalog
from cli_run import (
    aiomero,
    argv,
    command_env,
    counts_by_type,
    crawl_summary,
    server_args,
)
from crawl_expect import expected, parse


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Output:
    """A process's output, read in a thread so that waiting for it can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(stream,))
        self._reader.daemon = True
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def until(self, prefix: str | None, timeout: float) -> str:
        """The next lines up to one starting with ``prefix``, or up to the end
        of the output if ``prefix`` is None."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"nothing more in {timeout} s: {seen}") from None
            if line is None:
                assert prefix is None, f"the output ended without {prefix!r}: {seen}"
                self._reader.join()
                return "".join(seen)
            seen.append(line)
            if prefix is not None and line.startswith(prefix):
                return "".join(seen)


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
        """No connection setting from any source: the embedded demo, logged
        in as root."""
        target = resolve_target(
            host=None,
            port=None,
            username=None,
            secure=None,
            config=None,
            demo_scale=0.02,
            environ={"HOME": "/nowhere"},
            interactive=False,
        )

        assert target.embedded
        assert target.settings.username == "root"
        assert target.identity()["server"] == "embedded-emulator:idr:0.02"

    @pytest.mark.parametrize(
        ("username", "port", "environ", "config_text"),
        [
            (None, None, {}, "username: alice\npassword: secret-pw\n"),
            (None, None, {}, ""),
            (None, None, {}, "# nothing but a comment\n"),
            ("alice", None, {}, None),
            (None, 4064, {}, None),
            (None, None, {"OMERO_PASSWORD": "secret-pw"}, None),
            (None, None, {"OMERO_USER": "alice"}, None),
        ],
    )
    def test_settings_without_a_host_are_a_usage_error_not_the_demo(
        self,
        tmp_path: Path,
        username: str | None,
        port: int | None,
        environ: dict[str, str],
        config_text: str | None,
    ) -> None:
        """Any connection setting (even an empty config file) without a
        host stops with exit status 2, naming the host, never the demo."""
        config = None
        if config_text is not None:
            config = tmp_path / "c.yaml"
            config.write_text(config_text)
        with pytest.raises(CliError, match="no host") as caught:
            resolve_target(
                host=None,
                port=port,
                username=username,
                secure=None,
                config=config,
                demo_scale=0.01,
                environ=environ,
                interactive=False,
            )
        assert caught.value.exit_code == EXIT_USAGE
        assert "OMERO_HOST" in caught.value.message

    def test_a_config_file_without_a_host_exits_2_with_one_line(
        self, tmp_path: Path
    ) -> None:
        """The command stops before any server is used: one line, no
        password, no embedded emulator."""
        config = tmp_path / "c.yaml"
        config.write_text("username: alice\npassword: secret-pw\n")
        output = tmp_path / "out.jsonl"

        done = aiomero("crawl", "--config", str(config), "-o", str(output))

        assert done.returncode == EXIT_USAGE, done.stderr
        assert done.stderr.startswith("Error: no host:"), done.stderr
        assert len(done.stderr.splitlines()) == 1
        assert "secret-pw" not in done.stderr
        assert "embedded" not in done.stderr
        assert not output.exists()

    def test_a_missing_password_without_a_terminal_is_a_usage_error(self) -> None:
        """A server but no password and no terminal to ask on: exit status 2."""
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
        """A refused login: status 3, one line, and the password nowhere."""
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
        """Nothing listening on the port: status 4 and one line naming the host."""
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
        """The command run without OMERO_PASSWORD or a terminal exits with 2."""
        done = aiomero("crawl", *server_args(omero_emulator, "alice"))

        assert done.returncode == EXIT_USAGE
        assert "OMERO_PASSWORD" in one_error_line(done.stderr)

    def test_a_bad_shard_is_a_usage_error(self) -> None:
        """--shard 3/2 is refused with status 2, naming the bad value."""
        done = aiomero("crawl", "--shard", "3/2")

        assert done.returncode == EXIT_USAGE
        assert "3/2" in done.stderr

    @pytest.mark.parametrize(
        "args",
        [
            ["crawl", "--group", "-2"],
            ["crawl", "--timeout", "nan"],
            ["crawl", "--timeout", "inf"],
            ["crawl", "--timeout", "3e6"],
            ["crawl", "--demo-scale", "nan"],
            ["emulator", "--host", "999.1.1.1", "--port", "0"],
            ["emulator", "--host", "", "--port", "0"],
            ["emulator", "--port", "0", "--catalog", "nope"],
            ["emulator", "--port", "0", "--catalog", "nosuchmod:fn"],
            ["emulator", "--port", "0", "--catalog", "idr", "--scale", "nan"],
        ],
    )
    def test_a_bad_value_is_a_usage_error_without_a_traceback(
        self, args: list[str]
    ) -> None:
        """Values the library rejects end in one ``Error:`` line, status 2."""
        done = aiomero(*args, timeout=60)

        assert done.returncode == EXIT_USAGE, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.splitlines()[-1].startswith("Error: "), done.stderr

    @pytest.mark.parametrize("option", ["--port", "--insecure-port"])
    def test_an_emulator_port_in_use_is_a_one_line_usage_error(
        self, option: str
    ) -> None:
        """A taken port is named in one line; nothing is served."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = str(taken.getsockname()[1])
            ports = {"--port": "0", option: port}
            done = aiomero("emulator", *(x for kv in ports.items() for x in kv))

        assert done.returncode == EXIT_USAGE, done.stderr
        assert done.stderr == f"Error: {option} {port}: Address already in use\n"
        assert READY_PREFIX not in done.stdout

    def test_a_config_file_that_is_not_utf8_is_a_one_line_usage_error(
        self, tmp_path: Path
    ) -> None:
        """A config file of bytes that are not text: one line, status 2."""
        config = tmp_path / "c.yaml"
        config.write_bytes(b"username: \xff\xfe\n")

        done = aiomero("whoami", "--config", str(config))

        assert done.returncode == EXIT_USAGE, done.stderr
        assert done.stderr == f"Error: {config}: cannot read (not UTF-8 text)\n"


class TestWhoami:
    def test_whoami_prints_user_groups_admin_and_round_trip(
        self, omero_emulator: Emulator
    ) -> None:
        """whoami prints the user and id, the groups, no admin, and a round trip."""
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
        """whoami says that root is an administrator."""
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
        found = parse(output.read_bytes().splitlines())
        assert found == expected(idr_catalog(0.0005), "root")
        summary = crawl_summary(done.stderr)
        assert summary.state == "complete"
        assert summary.errors == 0
        assert summary.total == sum(found.values())
        assert {k: n for k, n in summary.counts.items() if n} == counts_by_type(found)
        assert summary.rate > 0

    def test_the_dev_demo_crawls_afresh_each_time(self, tmp_path: Path) -> None:
        """The crawl that ``./dev demo`` runs covers the whole demo again
        when run a second time, rather than finding it complete."""
        dev = Path(__file__).parent.parent / "dev"
        line = next(
            text
            for text in dev.read_text().splitlines()
            if "/bin/aiomero" in text and " crawl " in text
        )
        words = shlex.split(line)
        args = words[words.index("crawl") : words.index("$@")]
        for _ in range(2):
            done = subprocess.run(
                argv(*args, "--demo-scale", "0.0005", "--progress", "none"),
                cwd=tmp_path,
                env=command_env(),
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            assert crawl_summary(done.stderr).state == "complete"
        found = parse((tmp_path / "demo-crawl.jsonl").read_bytes().splitlines())
        assert found == expected(idr_catalog(0.0005), "root")


class TestEmulator:
    def test_the_emulator_command_prints_how_to_connect_and_serves_until_stopped(
        self,
    ) -> None:
        """``aiomero emulator`` prints its ports and the users with their
        passwords, serves the unmodified BlitzGateway on them, and exits 0
        soon after SIGTERM."""
        insecure = closed_port()
        with subprocess.Popen(
            argv("emulator", "--port", "0", "--insecure-port", str(insecure)),
            env=command_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        ) as process:
            try:
                assert process.stdout is not None
                output = Output(process.stdout)
                out = output.until(READY_PREFIX, timeout=60)
                host, port = self.check_description(out, insecure)

                conn = BlitzGateway("root", "omero", host=host, port=port, secure=False)
                assert conn.connect(), conn.getLastError()
                try:
                    assert conn.getUser().getName() == "root"
                    info = conn.c.sf.ice_getConnection().getInfo()
                    assert info.remotePort == insecure
                finally:
                    conn.close()

                process.terminate()
                stopped = time.monotonic()
                assert process.wait(timeout=30) == 0
                assert time.monotonic() - stopped < 10
                assert "OMERO emulator stopped" in output.until(None, timeout=10)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    @staticmethod
    def check_description(out: str, insecure: int) -> tuple[str, int]:
        """Check what the emulator printed before it was ready; its host and
        SSL port."""
        ready = re.search(
            r"host=(\S+) port=(\d+) insecure_port=(\d+)$", out.splitlines()[-1]
        )
        assert ready is not None, out
        host, port = ready[1], int(ready[2])
        assert (host, int(ready[3])) == ("127.0.0.1", insecure)
        assert port > 0
        assert f"OMERO emulator on {host}\n" in out
        assert re.search(rf"^  SSL \(logins\): +port {port}$", out, re.M)
        assert re.search(rf"^  TCP \(secure=False\): +port {insecure}$", out, re.M)
        users = [(u.name, u.password) for u in default_catalog().users]
        assert ("root", "omero") in users
        for name, password in users:
            assert re.search(rf"^  {name} +{re.escape(password)} ", out, re.M), name
        return host, port
