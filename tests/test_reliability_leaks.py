"""What AsyncGateway leaves behind: nothing, after close; little, when forgotten.

The client runs in a child process (``reliability_child.py``) so that its
figures are its own: the emulator, in this process, runs threads of its own
whose number varies with load. The child reads the kernel's thread count,
its open descriptors and its resident memory before and after the cycles;
this process checks the emulator's live sessions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aiomero.testing import Emulator

HERE = Path(__file__).resolve().parent
CHILD = HERE / "reliability_child.py"

# Measured on the 2-core development machine, 500 cycles after 20 warm-up
# rounds: resident memory grew by 1.0 to 1.8 MiB, secure or not, and by
# 0.8 MiB over 60 rounds of failures; threads and descriptors came back
# exactly. A leaked gateway keeps at least its communicator (about
# 0.3 MiB), so 500 of them would pass 150 MiB.
RSS_BOUND_KIB = 25 * 1024


def _run_child(
    mode: str, timeout: float, **args: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-W",
            "always::ResourceWarning",
            str(CHILD),
            mode,
            json.dumps(args),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE,
    )


def _figures(emulator: Emulator, mode: str, **args: Any) -> dict[str, Any]:
    done = _run_child(
        mode,
        120,
        host=emulator.host,
        port=emulator.port,
        user="alice",
        password="alice-pw",
        **args,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _assert_nothing_left(figures: dict[str, Any]) -> None:
    before, after = figures["before"], figures["after"]
    assert after["threads"] <= before["threads"], figures
    assert after["fds"] <= before["fds"], figures
    assert after["rss_kib"] - before["rss_kib"] < RSS_BOUND_KIB, figures


class TestConnectCloseCycles:
    @pytest.mark.slow
    @pytest.mark.parametrize("secure", [True, False])
    def test_500_connect_close_cycles_leave_nothing_behind(
        self, omero_emulator: Emulator, secure: bool
    ) -> None:
        """Threads, descriptors and server sessions return to where they
        started after 500 cycles; memory grows by less than the bound."""
        figures = _figures(omero_emulator, "cycles", secure=secure, cycles=500)
        print("connect/close x500", "secure" if secure else "insecure", figures)
        _assert_nothing_left(figures)
        counters = omero_emulator.counters
        assert counters.logins == 520
        assert counters.live_sessions == 0

    @pytest.mark.slow
    def test_failed_connects_and_abandoned_calls_leave_nothing_behind(
        self, omero_emulator: Emulator
    ) -> None:
        """60 rounds of a refused port, a wrong password, a silent port, a
        timed-out call and a cancelled call leave no thread, descriptor or
        session behind."""
        omero_emulator.faults.set_latency(0.1, op="getSecurityRoles")
        figures = _figures(omero_emulator, "failures", cycles=60, warmup=5)
        print("failure rounds x60", figures)
        _assert_nothing_left(figures)
        assert omero_emulator.counters.live_sessions == 0


class TestForgottenGateway:
    def _forget(
        self, emulator: Emulator, how: str
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        done = _run_child(
            "forget",
            30,
            host=emulator.host,
            port=emulator.port,
            user="alice",
            password="alice-pw",
            how=how,
        )
        return done, time.monotonic() - started

    def test_a_process_that_forgets_to_close_exits_promptly_with_a_warning(
        self, omero_emulator: Emulator
    ) -> None:
        """A connected gateway left open at exit: the process ends at once
        and a ResourceWarning says the gateway was not closed."""
        done, seconds = self._forget(omero_emulator, "keep")
        assert done.returncode == 0, done.stderr[-3000:]
        assert "leaving" in done.stdout
        assert "ResourceWarning" in done.stderr
        assert "connected session=sk:" in done.stderr  # the state it was left in
        assert "not connected" not in done.stderr
        assert "was not closed (the interpreter exited)" in done.stderr
        assert "alice-pw" not in done.stderr
        assert seconds < 15

    def test_a_gateway_collected_while_connected_warns_and_frees_itself(
        self, omero_emulator: Emulator
    ) -> None:
        """A connected gateway garbage-collected while the loop runs warns
        and frees its thread; the process goes on and exits cleanly."""
        done, _ = self._forget(omero_emulator, "drop")
        assert done.returncode == 0, done.stderr[-3000:]
        assert "dropped" in done.stdout
        assert "garbage-collected while connected" in done.stderr

    def test_a_process_exits_promptly_with_a_call_still_waiting_for_the_server(
        self, omero_emulator: Emulator
    ) -> None:
        """A forgotten gateway whose call the server never answers does not
        hold the process at exit."""
        stall = omero_emulator.faults.stall("findAllByQuery")
        releaser = threading.Timer(25, stall.release)  # never hang the test
        releaser.start()
        try:
            done, seconds = self._forget(omero_emulator, "stalled")
        finally:
            releaser.cancel()
            stall.release()
        assert done.returncode == 0, done.stderr[-3000:]
        assert stall.held >= 1
        assert "ResourceWarning" in done.stderr
        assert seconds < 15
