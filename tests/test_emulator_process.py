"""The emulator as a child process and as a command."""

from __future__ import annotations

import os
import time

import psutil
import pytest

from aiomero.testing import EmulatorProcess


@pytest.fixture(scope="module")
def child():
    with EmulatorProcess(port=0) as process:
        yield process


def test_child_process_serves_the_gateway(child: EmulatorProcess) -> None:
    """A gateway logs in to the child on the port it announced."""
    assert child.running and child.port > 0 and child.insecure_port > 0
    conn = child.gateway("alice", "alice-pw")
    assert conn.connect()
    try:
        assert conn.getEventContext().userName == "alice"
    finally:
        conn.close()


def test_command_prints_users_and_how_to_connect(child: EmulatorProcess) -> None:
    """The command lists the catalog's users with their passwords."""
    assert "alice-pw" in child.output
    assert f"port={child.port}" in child.output
    assert "BlitzGateway('root', 'omero'" in child.output


def test_latency_argument_delays_replies() -> None:
    """--latency-ms delays every reply of the child."""
    with EmulatorProcess(port=0, latency_ms=250) as process:
        conn = process.gateway()
        assert conn.connect()
        try:
            admin = conn.c.sf.getAdminService()
            start = time.monotonic()
            admin.getSecurityRoles()
            assert time.monotonic() - start >= 0.2
        finally:
            conn.close()


def test_restart_keeps_the_ports_and_loses_sessions() -> None:
    """A restarted child listens on the same ports and forgot every session."""
    with EmulatorProcess(port=0) as process:
        port, insecure_port = process.port, process.insecure_port
        conn = process.gateway(secure=True)
        assert conn.connect()
        key = conn.getEventContext().sessionUuid
        conn.close(hard=False)

        process.restart()
        assert (process.port, process.insecure_port) == (port, insecure_port)
        late = process.gateway()
        assert late.connect(sUuid=key) is False
        late.close()


def test_stop_ends_the_child() -> None:
    """stop() ends the child process."""
    process = EmulatorProcess(port=0).start()
    pid = process.pid
    assert pid is not None and psutil.pid_exists(pid)
    process.stop()
    assert not process.running
    assert not psutil.pid_exists(pid)


def test_child_serves_a_catalog_named_by_module_and_function(tmp_path) -> None:
    """--catalog module:function serves the Catalog that function builds."""
    (tmp_path / "my_catalogs.py").write_text(
        "from aiomero.testing import Catalog\n"
        "def tiny():\n"
        "    catalog = Catalog()\n"
        "    catalog.add_group('lab')\n"
        "    catalog.add_user('zed', 'zed-pw', groups=['lab'])\n"
        "    return catalog\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    with EmulatorProcess(port=0, catalog="my_catalogs:tiny", env=env) as process:
        conn = process.gateway("zed", "zed-pw")
        assert conn.connect()
        try:
            assert conn.getEventContext().groupName == "lab"
        finally:
            conn.close()


def test_child_serves_the_idr_catalog() -> None:
    """--catalog idr serves the IDR-shaped catalog's users and data."""
    with EmulatorProcess(port=0, catalog="idr", scale=0.001) as process:
        assert "idr-" in process.output
        conn = process.gateway()
        assert conn.connect()
        try:
            conn.SERVICE_OPTS.setOmeroGroup("-1")
            assert list(conn.getObjects("Screen")) or list(conn.getObjects("Project"))
        finally:
            conn.close()
