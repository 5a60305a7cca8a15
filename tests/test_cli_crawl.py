"""``aiomero crawl`` as a process: interrupted, killed, resumed, sharded."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiomero.cli import EXIT_ERRORS, EXIT_INTERRUPTED, EXIT_UNREACHABLE, EXIT_USAGE
from aiomero.crawl import CheckpointedOutput
from aiomero.testing import Emulator
from aiomero.testing.idr import idr_catalog
from cli_run import aiomero, counts_by_type, crawl_summary, server_args, start
from crawl_expect import expected, parse

ROOT = {"OMERO_PASSWORD": "omero"}
# Small units, few at a time, on a slow server: a crawl of many steps.
SLOW = ["--concurrency", "2", "--batch-size", "1", "--progress", "none"]


@pytest.fixture
def idr_emulator(omero_emulator_factory: Callable[..., Emulator]) -> Emulator:
    """An IDR-shaped emulator of 217 top-level containers, 10 ms a reply."""
    return omero_emulator_factory(catalog=idr_catalog(0.001), latency=0.01)


def wait_for_commits(checkpoint: Path, count: int, process: Any) -> None:
    """Wait until the crawl has committed ``count`` units."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if checkpoint.exists():
            lines = checkpoint.read_bytes().count(b"\n")
            if lines > count:
                return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the crawl committed nothing in time")


def crawl_to(emulator: Emulator, output: Path, *extra: str) -> str:
    done = aiomero("crawl", *server_args(emulator), "-o", str(output), *extra, env=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stderr


class TestInterrupt:
    def test_ctrl_c_exits_130_and_closes_sessions_and_a_rerun_completes_exactly(
        self, idr_emulator: Emulator, tmp_path: Path
    ) -> None:
        """SIGINT mid-crawl: exit 130 within seconds, sessions closed, the
        output holds whole units only; the same command then finishes the
        crawl with every record once."""
        output = tmp_path / "crawl.jsonl"
        checkpoint = Path(f"{output}.checkpoint")
        process = start(
            "crawl", *server_args(idr_emulator), "-o", str(output), *SLOW, env=ROOT
        )
        wait_for_commits(checkpoint, 10, process)

        stopped = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - stopped

        assert process.returncode == EXIT_INTERRUPTED, stderr
        # Within a couple of seconds, and closed by itself: a crawl cut short
        # at the end of its 5 s grace period takes longer.
        assert took < 5, took
        assert "Traceback" not in stderr
        assert "run the same command again to resume" in stderr
        assert idr_emulator.session_keys() == []
        want = expected(idr_emulator.catalog, "root")
        partial = parse(output.read_bytes().splitlines())
        assert 0 < sum(partial.values()) < sum(want.values())
        assert partial < want

        stderr = crawl_to(idr_emulator, output, *SLOW)

        assert "resuming" in stderr
        assert parse(output.read_bytes().splitlines()) == want

    def test_a_killed_crawl_resumes_without_losing_or_repeating_records(
        self, idr_emulator: Emulator, tmp_path: Path
    ) -> None:
        """SIGKILL (no chance to clean up, maybe mid-write): the rerun cuts
        the output back to its last checkpoint and completes it exactly."""
        output = tmp_path / "crawl.jsonl"
        checkpoint = Path(f"{output}.checkpoint")
        process = start(
            "crawl", *server_args(idr_emulator), "-o", str(output), *SLOW, env=ROOT
        )
        wait_for_commits(checkpoint, 10, process)
        process.kill()
        process.communicate(timeout=30)

        crawl_to(idr_emulator, output, *SLOW)

        want = expected(idr_emulator.catalog, "root")
        assert parse(output.read_bytes().splitlines()) == want

    def test_a_lost_server_stops_the_crawl_and_a_rerun_completes_it(
        self, idr_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The server going away mid-crawl stops it with exit status 4 and
        one error line; once the server is back, the rerun completes."""
        output = tmp_path / "crawl.jsonl"
        checkpoint = Path(f"{output}.checkpoint")
        process = start(
            "crawl", *server_args(idr_emulator), "-o", str(output), *SLOW, env=ROOT
        )
        wait_for_commits(checkpoint, 5, process)

        idr_emulator.stop()
        _, stderr = process.communicate(timeout=60)

        assert process.returncode == EXIT_UNREACHABLE, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines()[-1].startswith("Error: ")

        idr_emulator.start()
        crawl_to(idr_emulator, output, *SLOW)

        want = expected(idr_emulator.catalog, "root")
        assert parse(output.read_bytes().splitlines()) == want


class TestErrors:
    def test_a_failing_unit_exits_1_and_the_summary_counts_it(
        self, idr_emulator: Emulator, tmp_path: Path
    ) -> None:
        """One query failing inside a unit: the crawl goes on to its end, exits
        with status 1, and its summary counts the failed unit and the records
        written; the same command then completes the crawl."""
        output = tmp_path / "crawl.jsonl"
        checkpoint = Path(f"{output}.checkpoint")
        process = start(
            "crawl", *server_args(idr_emulator), "-o", str(output), *SLOW, env=ROOT
        )
        # A unit is committed, so the top-level listings are done.
        wait_for_commits(checkpoint, 1, process)
        idr_emulator.faults.fail_next("projection")
        _, stderr = process.communicate(timeout=120)

        assert process.returncode == EXIT_ERRORS, stderr
        assert "Traceback" not in stderr
        summary = crawl_summary(stderr)
        assert (summary.state, summary.errors) == ("finished with errors", 1)
        written = parse(output.read_bytes().splitlines())
        want = expected(idr_emulator.catalog, "root")
        assert written < want
        assert summary.total == sum(written.values())
        assert {k: n for k, n in summary.counts.items() if n} == counts_by_type(written)
        assert "1 unit(s) failed" in stderr.strip().splitlines()[-1]

        stderr = crawl_to(idr_emulator, output, *SLOW)

        assert crawl_summary(stderr).errors == 0
        assert parse(output.read_bytes().splitlines()) == want


class TestShards:
    def test_two_shard_processes_make_the_whole_crawl(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """--shard 1/2 and 2/2 write disjoint top levels whose union is all."""
        parts = []
        for k in (1, 2):
            output = tmp_path / f"part-{k}.jsonl"
            crawl_to(omero_emulator, output, "--shard", f"{k}/2")
            parts.append(parse(output.read_bytes().splitlines()))

        assert parts[0] + parts[1] == expected(omero_emulator.catalog, "root")
        tops = [{(r[0], r[1]) for r in part if r[3] is None} for part in parts]
        assert tops[0] and tops[1] and not tops[0] & tops[1]


class TestCheckpoints:
    def test_a_finished_crawl_is_not_redone_unless_fresh(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A complete crawl run again writes nothing; --fresh crawls it anew."""
        output = tmp_path / "crawl.jsonl"
        crawl_to(omero_emulator, output)
        first = output.read_bytes()

        again = crawl_to(omero_emulator, output)
        assert "already complete" in again
        assert output.read_bytes() == first

        fresh = crawl_to(omero_emulator, output, "--fresh")
        assert "crawl complete" in fresh
        assert parse(output.read_bytes().splitlines()) == parse(first.splitlines())

    def test_resuming_with_other_options_is_refused(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A checkpoint of the whole crawl is not continued as a shard."""
        output = tmp_path / "crawl.jsonl"
        crawl_to(omero_emulator, output)

        done = aiomero(
            "crawl",
            *server_args(omero_emulator),
            "-o",
            str(output),
            "--shard",
            "1/2",
            env=ROOT,
        )

        assert done.returncode == EXIT_USAGE
        assert "shard" in done.stderr
        assert "Traceback" not in done.stderr

    def test_output_files_that_would_lose_data_are_refused_in_one_line(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """The checkpoint as the output, an output with data but no
        checkpoint, and an output another crawl writes: exit 2, one line,
        the file untouched."""
        output = tmp_path / "crawl.jsonl"
        output.write_text("precious\n")
        same = ["--checkpoint", str(output), "--fresh"]
        busy = CheckpointedOutput(
            tmp_path / "busy.jsonl", identity={"server": "elsewhere"}
        )
        try:
            for args, message in (
                ([str(output), *same], "must not be the output"),
                ([str(output)], "use --fresh"),
                ([str(tmp_path / "busy.jsonl")], "being written by another crawl"),
            ):
                done = aiomero(
                    "crawl", *server_args(omero_emulator), "-o", *args, env=ROOT
                )
                assert done.returncode == EXIT_USAGE, done.stderr
                assert done.stderr.startswith("Error: "), done.stderr
                assert message in done.stderr
                assert len(done.stderr.splitlines()) == 1, done.stderr
                assert output.read_text() == "precious\n"
        finally:
            busy.close()

    def test_a_group_that_does_not_exist_is_not_offered_a_resume(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A group id the server refuses is a usage error: exit 2, and
        nothing suggests running the same command again."""
        output = tmp_path / "crawl.jsonl"
        done = aiomero(
            "crawl",
            *server_args(omero_emulator),
            "-o",
            str(output),
            "--group",
            "999",
            "--progress",
            "none",
            env=ROOT,
        )

        assert done.returncode == EXIT_USAGE, done.stderr
        assert "999" in done.stderr
        assert "again" not in done.stderr
        assert "Traceback" not in done.stderr

    def test_without_output_the_records_go_to_standard_output(
        self, omero_emulator: Emulator
    ) -> None:
        """Without -o every record goes to standard output."""
        done = aiomero("crawl", *server_args(omero_emulator), env=ROOT)

        assert done.returncode == 0, done.stderr
        found = parse(done.stdout.splitlines())
        assert found == expected(omero_emulator.catalog, "root")
