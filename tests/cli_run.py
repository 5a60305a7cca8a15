"""Running the ``aiomero`` command as a child process, as a user would."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiomero.testing import Emulator


def command_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``OMERO_*`` setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMERO_")}
    env.update(extra or {})
    return env


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiomero.cli", *args]


def server_args(emulator: Emulator, user: str = "root") -> list[str]:
    return ["--host", emulator.host, "--port", str(emulator.port), "--user", user]


def aiomero(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``aiomero args`` to its end; its exit status and output."""
    return subprocess.run(
        argv(*args),
        env=command_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def start(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[Any]:
    """Start ``aiomero args`` without waiting for it."""
    return subprocess.Popen(
        argv(*args),
        env=command_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


_SUMMARY = re.compile(
    r"^crawl (?P<state>complete|finished with errors): (?P<total>[\d,]+) records "
    r"in [\d.]+ s \((?P<rate>[\d,]+)/s\), [\d,]+ queries, (?P<errors>\d+) errors\n"
    r"  (?P<counts>.+)$",
    re.M,
)


@dataclass
class Summary:
    """The summary a crawl prints on standard error when it ends."""

    state: str
    total: int
    rate: int
    errors: int
    counts: dict[str, int]


def crawl_summary(stderr: str) -> Summary:
    """The summary in ``stderr``; fails the test if there is none."""
    found = _SUMMARY.search(stderr)
    assert found is not None, stderr
    counts = {}
    for item in found["counts"].split(", "):
        kind, count = item.split(" ")
        counts[kind] = int(count.replace(",", ""))
    return Summary(
        state=found["state"],
        total=int(found["total"].replace(",", "")),
        rate=int(found["rate"].replace(",", "")),
        errors=int(found["errors"]),
        counts=counts,
    )


def counts_by_type(records: collections.Counter[Any]) -> dict[str, int]:
    """How many of ``records`` (as ``crawl_expect.parse`` counts them) there
    are of each type."""
    counts: collections.Counter[str] = collections.Counter()
    for record, times in records.items():
        counts[record[0]] += times
    return dict(counts)
