"""Every Python example of docs/testing.md runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from doc_examples import DOCS, is_test_file, run_example
from doc_examples import examples as examples_of

DOC = DOCS / "testing.md"


def examples() -> list[str]:
    return examples_of(DOC)


def test_the_doc_has_examples() -> None:
    """The extraction finds both plain examples and a pytest file."""
    found = examples()
    assert len(found) >= 8
    assert any(is_test_file(code) for code in found)


@pytest.mark.parametrize(
    "code", [c for c in examples() if not is_test_file(c)], ids=lambda c: c[:40]
)
def test_example_runs(code: str) -> None:
    """A plain example runs to its end without an error."""
    run_example(code, DOC)


@pytest.mark.parametrize("code", [c for c in examples() if is_test_file(c)])
def test_pytest_example_passes(code: str, tmp_path: Path) -> None:
    """An example test file passes under pytest with aiomero's plugin."""
    name = code.splitlines()[0].removeprefix("# ").strip()
    (tmp_path / name).write_text(code)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout
