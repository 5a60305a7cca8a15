"""The pool under strain: leaks over many loans with random cancellations,
users and groups interleaved on one pool, and a short soak with faults."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aiomero import AiomeroError
from aiomero.testing import Emulator
from pool_helpers import pool_for

PRIVATE_LAB, READ_ONLY_LAB, ANNOTATE_LAB, READ_WRITE_LAB = 3, 4, 5, 6
ROOT = Path(__file__).resolve().parent.parent


class TestLeaks:
    @pytest.mark.slow
    def test_500_loans_with_random_cancellations_leak_nothing(self) -> None:
        """In a process of its own, against a server in another: OS threads,
        descriptors and the user's sessions on the server return to where
        they started, and memory grows by less than 30 MB."""
        done = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("leak_probe.py"))],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        figures = json.loads(done.stdout.strip().splitlines()[-1])

        assert figures["loans"] >= 500
        assert figures["cancelled"] > 50
        assert figures["threads_after"] <= figures["threads_before"]
        assert figures["fds_after"] <= figures["fds_before"]
        assert figures["rss_kib_after"] - figures["rss_kib_before"] < 30 * 1024
        assert figures["open_sessions_after"] == 1  # the one asking


class TestSharing:
    async def test_users_and_groups_interleaved_on_one_pool_never_mix(
        self, omero_emulator: Emulator
    ) -> None:
        """Thousands of calls by tasks of three users in their groups, on one
        administrator's pool, each see only what their user may see in
        their group."""
        plan = [
            ("alice", PRIVATE_LAB),
            ("alice", READ_ONLY_LAB),
            ("bob", PRIVATE_LAB),
            ("bob", ANNOTATE_LAB),
            ("dave", READ_WRITE_LAB),
            ("carol", READ_WRITE_LAB),
        ]

        # What each (user, group) sees, asked on a session of its own.
        expected: dict[tuple[str, int], set[int]] = {}
        async with pool_for(omero_emulator, max_size=6) as pool:
            for user, group in plan:
                async with pool.acquire(user=user, group=group) as gw:
                    expected[user, group] = {p.id for p in await gw.listProjects()}
            assert all(expected.values())
            assert len({frozenset(v) for v in expected.values()}) > 3

            wrong: list[tuple[str, int, str]] = []

            async def worker(user: str, group: int) -> None:
                for _ in range(60):
                    async with pool.acquire(user=user, group=group) as gw:
                        me = (await gw.getUser()).omeName
                        rows = {p.id for p in await gw.listProjects()}
                    if me != user or rows != expected[user, group]:
                        wrong.append((user, group, str(me)))

            await asyncio.gather(*(worker(u, g) for u, g in plan for _ in range(3)))
        assert wrong == []
        assert omero_emulator.counters.live_sessions == 0


class TestSoak:
    def test_a_short_soak_with_random_faults_ends_clean(self, tmp_path: Path) -> None:
        """The soak script, run for a few seconds, reports calls and only
        typed errors, and exits 0."""
        report = tmp_path / "soak.json"
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.soak", "--seconds", "4",
             "--json", str(report)],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        figures: dict[str, Any] = json.loads(report.read_text())
        assert figures["calls"] > 50
        assert figures["untyped_errors"] == 0
        assert figures["faults_injected"] > 0
        assert figures["live_sessions_after"] == 0
        assert set(figures["errors"]) <= {cls.__name__ for cls in _aiomero_errors()}


def _aiomero_errors() -> list[type[AiomeroError]]:
    import aiomero

    return [
        getattr(aiomero, name)
        for name in aiomero.__all__
        if isinstance(getattr(aiomero, name), type)
        and issubclass(getattr(aiomero, name), AiomeroError)
    ]
