"""Running the ``aiomero`` command as a child process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
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
