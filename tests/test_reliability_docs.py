"""The reliability page names only tests that exist, and every one of them."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reliability.md"
MODULES = {
    "faults": "test_reliability_faults",
    "leaks": "test_reliability_leaks",
    "input": "test_reliability_input",
    "security": "test_reliability_security",
}

# `faults::TestX::test_y`, `...::test_y` (same class as the name before),
# `...[param]` (same test as the name before), `input::TestX::*`.
_REFERENCE = re.compile(
    r"`((?:faults|leaks|input|security)::Test\w+::(?:\*|test_\w+)(?:\[[^\]]*\])?"
    r"|\.\.\.::test_\w+|\.\.\.\[[^\]]*\])`"
)


def _named_tests() -> set[tuple[str, str, str]]:
    named: set[tuple[str, str, str]] = set()
    module = cls = test = ""
    for reference in _REFERENCE.findall(PAGE.read_text()):
        if reference.startswith("...") and not module:
            continue  # the explanation of the notation, before any name
        if reference.startswith("...["):
            named.add((module, cls, test))
            continue
        if reference.startswith("...::"):
            test = reference[len("...::") :]
        else:
            prefix, cls, test = reference.split("::")
            module = MODULES[prefix]
        test = test.split("[")[0]
        named.add((module, cls, test))
    return named


def _existing_tests() -> set[tuple[str, str, str]]:
    found: set[tuple[str, str, str]] = set()
    for module_name in MODULES.values():
        module = importlib.import_module(module_name)
        for cls_name, cls in vars(module).items():
            if cls_name.startswith("Test") and isinstance(cls, type):
                for name in vars(cls):
                    if name.startswith("test_"):
                        found.add((module_name, cls_name, name))
    return found


def test_every_test_the_page_names_exists() -> None:
    """A renamed or removed test must not leave a dead name on the page."""
    existing = _existing_tests()
    classes = {(module, cls) for module, cls, _ in existing}
    for module, cls, test in _named_tests():
        if test == "*":
            assert (module, cls) in classes, f"{module}::{cls}"
        else:
            assert (module, cls, test) in existing, f"{module}::{cls}::{test}"


def test_every_reliability_test_is_on_the_page() -> None:
    """A new guarantee is not finished until the page lists it."""
    named = _named_tests()
    whole_classes = {(m, c) for m, c, t in named if t == "*"}
    missing = [
        f"{module}::{cls}::{test}"
        for module, cls, test in sorted(_existing_tests())
        if (module, cls, test) not in named and (module, cls) not in whole_classes
    ]
    assert not missing, missing
