"""The emulator in a child process, for tests that need it out of process.

A child process has its own interpreter lock, so a client under load in the
test process does not slow the server down (nor the other way round), and
killing it is a real server crash. Faults cannot be driven from outside; a
latency is given when starting it.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time
from typing import Any

from aiomero.testing.command import READY_PREFIX

__all__ = ["EmulatorProcess"]


class EmulatorProcess:
    """``python -m aiomero.testing`` run as a child process.

    Options are those of the command line (see
    :func:`aiomero.testing.command.serve`); ``env`` replaces the child's
    environment (to extend its ``PYTHONPATH`` for a ``module:function``
    catalog, say). :meth:`start` returns once the
    child listens; :attr:`port` and :attr:`insecure_port` are then known and
    kept by :meth:`restart`, which loses every session (a new process).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        insecure_port: int = 0,
        catalog: str = "default",
        scale: float | None = None,
        latency_ms: float = 0.0,
        idle_timeout: float = 600.0,
        router: str = "builtin",
        python: str = sys.executable,
        startup_timeout: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.insecure_port = insecure_port
        self.catalog = catalog
        self.scale = scale
        self.latency_ms = latency_ms
        self.idle_timeout = idle_timeout
        self.router = router
        self.python = python
        self.startup_timeout = startup_timeout
        self.env = env
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the child is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def output(self) -> str:
        """The child's latest output lines, for diagnosing failures."""
        return "\n".join(self._output)

    def command(self) -> list[str]:
        """The command line that starts the child."""
        argv = [
            self.python,
            "-m",
            "aiomero.testing",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--insecure-port",
            str(self.insecure_port),
            "--catalog",
            self.catalog,
            "--idle-timeout",
            str(self.idle_timeout),
            "--router",
            self.router,
        ]
        if self.scale is not None:
            argv += ["--scale", str(self.scale)]
        if self.latency_ms:
            argv += ["--latency-ms", str(self.latency_ms)]
        return argv

    def start(self) -> EmulatorProcess:
        """Start the child and wait until it listens; return self.

        Raises RuntimeError (with the child's output) if it exits first or
        does not get ready within ``startup_timeout`` seconds.
        """
        if self.running:
            raise RuntimeError("the emulator process is already running")
        self._ready.clear()
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=self.env,
        )
        reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        reader.start()
        self._reader = reader

        deadline = time.monotonic() + self.startup_timeout
        while not self._ready.wait(0.05):
            if self._process.poll() is not None:
                reader.join(timeout=1)
                raise RuntimeError(f"emulator process exited:\n{self.output}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"emulator process not ready:\n{self.output}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child with SIGTERM, then SIGKILL after ``timeout``."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self._join_reader()

    def kill(self) -> None:
        """Kill the child at once, as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        self._join_reader()

    def _join_reader(self) -> None:
        # The child is gone, so its output ends and the reader closes the pipe.
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(timeout=5)

    def restart(self) -> None:
        """A new child on the same ports; every session is lost."""
        self.stop()
        self.start()

    def gateway(
        self, username: str = "root", password: str = "omero", **options: Any
    ) -> Any:
        """A new, unconnected ``BlitzGateway`` for the child's server."""
        from omero.gateway import BlitzGateway

        return BlitzGateway(
            username, password, host=self.host, port=self.port, **options
        )

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmulatorProcess {state} {self.host} ssl={self.port}>"

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                line = line.rstrip("\n")
                self._output.append(line)
                if line.startswith(READY_PREFIX):
                    fields = _fields(line[len(READY_PREFIX) :])
                    self.port = int(fields["port"])
                    self.insecure_port = int(fields["insecure_port"])
                    self._ready.set()


def _fields(text: str) -> dict[str, Any]:
    return dict(part.split("=", 1) for part in text.split() if "=" in part)
