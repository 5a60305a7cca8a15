"""aiomero's pytest plugin: cheap to load, and clear when glacier2 is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEST_FILE = """
def test_uses_the_emulator(omero_emulator, omero_gateway):
    conn = omero_gateway("alice", "alice-pw")
    assert conn.getEventContext().userName == "alice"
    assert omero_emulator.router == "glacier2"
"""


def test_loading_the_plugin_imports_no_omero() -> None:
    """Importing the plugin (pytest does, always) leaves omero-py unloaded."""
    code = (
        "import sys, aiomero.testing.pytest_plugin, aiomero.testing; "
        "assert 'omero' not in sys.modules and 'Ice' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_glacier2_option_skips_naming_the_package(tmp_path: Path) -> None:
    """Without glacier2router, --omero-emulator-router=glacier2 skips with
    a reason naming the Debian package zeroc-glacier2."""
    (tmp_path / "test_g2.py").write_text(TEST_FILE)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--omero-emulator-router=glacier2",
            "test_g2.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "zeroc-glacier2" in run.stdout
