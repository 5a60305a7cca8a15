"""Every Python example of docs/porting.md and docs/timeouts.md runs as written."""

from __future__ import annotations

import pytest

from aiomero.testing import Emulator
from doc_examples import DOCS, example_ids, examples, run_example

PORTING = DOCS / "porting.md"
TIMEOUTS = DOCS / "timeouts.md"


def test_the_guides_have_their_examples() -> None:
    """Each pattern of the porting guide has both forms; timeouts has its own."""
    porting = examples(PORTING)
    assert len(porting) >= 26
    assert sum("BlitzGateway(" in code for code in porting) >= 13
    assert sum("AsyncGateway" in code for code in porting) >= 13
    assert len(examples(TIMEOUTS)) >= 4


@pytest.mark.parametrize("code", examples(PORTING), ids=example_ids(PORTING))
def test_porting_example_runs(
    code: str, omero_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A porting example runs against the emulator with HOST and PORT set."""
    for name, value in {
        "OMERO_HOST": omero_emulator.host,
        "OMERO_PORT": str(omero_emulator.port),
        "OMERO_USER": "alice",
        "OMERO_PASSWORD": "alice-pw",
    }.items():
        monkeypatch.setenv(name, value)
    run_example(code, PORTING, HOST=omero_emulator.host, PORT=omero_emulator.port)
    assert omero_emulator.session_keys("alice") == []


@pytest.mark.parametrize("code", examples(TIMEOUTS), ids=example_ids(TIMEOUTS))
def test_timeouts_example_runs(code: str) -> None:
    """A timeouts example runs to its end, its assertions included."""
    run_example(code, TIMEOUTS)
