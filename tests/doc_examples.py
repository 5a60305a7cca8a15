"""The Python examples of the guides in docs/, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def examples(doc: Path) -> list[str]:
    """The code of every fenced ``python`` block of ``doc``, in order."""
    return BLOCK.findall(doc.read_text())


def example_ids(doc: Path) -> list[str]:
    """A test id per example of ``doc``: its section's heading and number."""
    ids, section, count = [], "top", 0
    for line in doc.read_text().splitlines():
        if line.startswith("## "):
            section = re.sub(r"[^a-z0-9]+", "-", line[3:].lower()).strip("-")
            count = 0
        elif line == "```python":
            count += 1
            ids.append(f"{section}-{count}")
    return ids


def is_test_file(code: str) -> bool:
    """Whether an example is a pytest file (its first line names the file)."""
    return code.startswith("# test_")


def run_example(code: str, doc: Path, **names: Any) -> dict[str, Any]:
    """Run one example as a script; ``names`` are predefined globals.

    Tracebacks point into ``doc``; the example's globals are returned.
    """
    scope: dict[str, Any] = {"__name__": "docs_example", **names}
    exec(compile(code, str(doc), "exec"), scope)
    return scope
