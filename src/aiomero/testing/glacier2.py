"""Running Debian's ``glacier2router`` in front of the emulator.

A real OMERO server sits behind Glacier2; with ``router="glacier2"`` the
emulator does too, so clients meet the real router's behaviour (its context
forwarding, its one shared connection to the server). The router comes from
Debian's package ``zeroc-glacier2`` (Ice 3.7), which talks to omero-py's Ice
3.6 without trouble.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from aiomero._logging import get_logger
from aiomero.testing._certs import CertificateFiles

__all__ = ["GLACIER2_PACKAGE", "Glacier2Router", "find_glacier2router"]

logger = get_logger()

GLACIER2_PACKAGE = "zeroc-glacier2"


def find_glacier2router() -> str | None:
    """The path of ``glacier2router``, or None when it is not installed."""
    return shutil.which("glacier2router")


class Glacier2Router:
    """One ``glacier2router`` process with SSL and TCP client endpoints.

    It asks the emulator's verifier and session manager, reached at
    ``manager_endpoint``, to log clients in, and forwards their calls with
    their Ice contexts and the type of endpoint they came through.
    """

    def __init__(
        self,
        host: str,
        port: int,
        insecure_port: int,
        manager_endpoint: str,
        certificates: CertificateFiles,
        binary: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.insecure_port = insecure_port
        self._manager_endpoint = manager_endpoint
        self._certificates = certificates
        self._binary = binary or find_glacier2router()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = certificates.directory / "glacier2router.log"

    def start(self, timeout: float = 15.0) -> None:
        """Start the router and wait until both client ports accept.

        Raises FileNotFoundError without the binary (Debian package
        ``zeroc-glacier2``) and RuntimeError if the router exits or does
        not listen within ``timeout`` seconds.
        """
        if self._binary is None:
            raise FileNotFoundError(
                f"glacier2router not found; install the package {GLACIER2_PACKAGE}"
            )
        config = self._write_config()
        with open(self._log, "ab") as log:
            self._process = subprocess.Popen(
                [self._binary, f"--Ice.Config={config}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        # The router is ready once both of its client endpoints accept.
        deadline = time.monotonic() + timeout
        for port in (self.port, self.insecure_port):
            while not _accepts(self.host, port):
                if self._process.poll() is not None:
                    raise RuntimeError(f"glacier2router exited: {self._tail()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"glacier2router did not listen: {self._tail()}")
                time.sleep(0.02)
        logger.info("emulator_glacier2router_started", port=self.port)

    def stop(self) -> None:
        """Stop the router; its client connections close with it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    @property
    def running(self) -> bool:
        """Whether the router process is alive."""
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> Path:
        certs = self._certificates
        host = self.host
        manager = self._manager_endpoint
        lines = {
            "Glacier2.InstanceName": "OMERO.Glacier2",
            "Glacier2.Client.Endpoints": (
                f"ssl -h {host} -p {self.port}:tcp -h {host} -p {self.insecure_port}"
            ),
            "Glacier2.Server.Endpoints": "tcp -h 127.0.0.1",
            "Glacier2.SessionManager": f"aiomero/session-manager:{manager}",
            "Glacier2.PermissionsVerifier": f"aiomero/verifier:{manager}",
            # Without it the server never sees omero.group and cross-group
            # queries silently return less.
            "Glacier2.Client.ForwardContext": "1",
            "Glacier2.AddConnectionContext": "1",
            "Ice.Plugin.IceSSL": "IceSSL:createIceSSL",
            "IceSSL.DefaultDir": str(certs.directory),
            "IceSSL.CertFile": certs.cert_file.name,
            "IceSSL.KeyFile": certs.key_file.name,
            "IceSSL.VerifyPeer": "0",
            "Ice.MessageSizeMax": "65536",
            "Ice.Warn.Connections": "0",
        }
        path = certs.directory / "glacier2router.cfg"
        path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        return path

    def _tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
