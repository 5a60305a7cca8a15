"""The crawl's checkpointed output: what a resumed crawl keeps and cuts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from aiomero.crawl import (
    CheckpointedOutput,
    CheckpointError,
    OutputBusyError,
    StreamOutput,
)

IDENTITY = {"server": "example:4064", "user": "alice", "shard": "1/1"}


def body(*lines: str) -> io.BytesIO:
    return io.BytesIO("".join(f"{line}\n" for line in lines).encode())


def write_units(path: Path, units: list[tuple[str, int, list[str]]]) -> None:
    output = CheckpointedOutput(path, identity=IDENTITY, fresh=True)
    for kind, oid, lines in units:
        output.commit([(kind, oid)], body(*lines), {kind: len(lines)})
    output.close()


class TestCheckpointedOutput:
    def test_resume_skips_committed_containers_and_keeps_their_lines(
        self, tmp_path: Path
    ) -> None:
        """Committed units are done on resume; their lines stay."""
        path = tmp_path / "crawl.jsonl"
        write_units(path, [("Project", 1, ["a", "b"]), ("Screen", 2, ["c"])])

        output = CheckpointedOutput(path, identity=IDENTITY)
        output.close()

        assert output.resumed
        assert output.done == {("Project", 1), ("Screen", 2)}
        assert output.previous_counts == {"Project": 2, "Screen": 1}
        assert path.read_text() == "a\nb\nc\n"

    def test_lines_without_a_checkpoint_entry_are_cut_on_resume(
        self, tmp_path: Path
    ) -> None:
        """A unit written but not checkpointed (a crash between the two) is
        cut away and not marked done, so it is crawled again, once."""
        path = tmp_path / "crawl.jsonl"
        write_units(path, [("Project", 1, ["a"])])
        with open(path, "ab") as out:
            out.write(b"b\npartial li")

        output = CheckpointedOutput(path, identity=IDENTITY)
        output.commit([("Project", 2)], body("b"), {"Project": 1})
        output.close()

        assert path.read_text() == "a\nb\n"

    def test_a_torn_checkpoint_line_is_ignored_and_removed(
        self, tmp_path: Path
    ) -> None:
        """Half a checkpoint entry counts for nothing, nor do its lines, and
        the next entry starts on a line of its own."""
        path = tmp_path / "crawl.jsonl"
        write_units(path, [("Project", 1, ["a"]), ("Project", 2, ["b"])])
        checkpoint = Path(f"{path}.checkpoint")
        data = checkpoint.read_bytes()
        checkpoint.write_bytes(data[: len(data) - 10])

        output = CheckpointedOutput(path, identity=IDENTITY)
        assert output.done == {("Project", 1)}
        output.commit([("Project", 2)], body("b"), {"Project": 1})
        output.close()

        assert path.read_text() == "a\nb\n"
        entries = [json.loads(x) for x in checkpoint.read_text().splitlines()]
        assert [e.get("done") for e in entries[1:]] == [
            [["Project", 1]],
            [["Project", 2]],
        ]

    def test_entries_past_the_end_of_a_shortened_output_are_dropped(
        self, tmp_path: Path
    ) -> None:
        """If the output lost its tail (a power loss before the disk caught
        up), the containers whose lines are gone are crawled again."""
        path = tmp_path / "crawl.jsonl"
        write_units(path, [("Project", 1, ["a"]), ("Project", 2, ["b"])])
        path.write_text("a\nb")

        output = CheckpointedOutput(path, identity=IDENTITY)
        output.close()

        assert output.done == {("Project", 1)}
        assert path.read_text() == "a\n"

    def test_a_checkpoint_of_other_options_is_refused(self, tmp_path: Path) -> None:
        """Resuming with another shard would mix two crawls: refused, and
        the message names the option that differs."""
        path = tmp_path / "crawl.jsonl"
        write_units(path, [("Project", 1, ["a"])])

        with pytest.raises(CheckpointError, match="shard"):
            CheckpointedOutput(path, identity={**IDENTITY, "shard": "2/2"})
        assert path.read_text() == "a\n"

    def test_fresh_starts_over(self, tmp_path: Path) -> None:
        """--fresh empties the output and forgets the checkpoint."""
        path = tmp_path / "crawl.jsonl"
        write_units(path, [("Project", 1, ["a"])])

        output = CheckpointedOutput(path, identity={"other": 1}, fresh=True)
        output.close()

        assert output.done == frozenset()
        assert path.read_text() == ""

    def test_finish_marks_the_crawl_complete(self, tmp_path: Path) -> None:
        """A finished crawl is reported complete when opened again."""
        path = tmp_path / "crawl.jsonl"
        output = CheckpointedOutput(path, identity=IDENTITY)
        output.commit([("Project", 1)], body("a"), {"Project": 1})
        output.finish()
        output.close()

        again = CheckpointedOutput(path, identity=IDENTITY)
        again.close()
        assert again.complete
        assert path.read_text() == "a\n"

    def test_a_file_that_is_not_a_checkpoint_is_refused(self, tmp_path: Path) -> None:
        """A checkpoint path pointing at some other file is not overwritten."""
        path = tmp_path / "crawl.jsonl"
        Path(f"{path}.checkpoint").write_text('{"hello": 1}\n')

        with pytest.raises(CheckpointError, match="not a crawl checkpoint"):
            CheckpointedOutput(path, identity=IDENTITY)

    def test_a_checkpoint_that_is_the_output_is_refused_before_writing(
        self, tmp_path: Path
    ) -> None:
        """The same file (by name or by a link) as output and checkpoint is
        refused, and the file is left as it was."""
        path = tmp_path / "same.jsonl"
        path.write_text("kept\n")
        link = tmp_path / "link.jsonl"
        link.symlink_to(path)

        for checkpoint in (path, link):
            with pytest.raises(CheckpointError, match="output itself"):
                CheckpointedOutput(path, checkpoint, identity=IDENTITY, fresh=True)
        assert path.read_text() == "kept\n"

    def test_an_output_with_data_and_no_checkpoint_is_not_emptied(
        self, tmp_path: Path
    ) -> None:
        """Without a checkpoint, existing data is refused unless fresh."""
        path = tmp_path / "crawl.jsonl"
        path.write_text("someone else's data\n")

        with pytest.raises(CheckpointError, match="--fresh"):
            CheckpointedOutput(path, identity=IDENTITY)
        assert path.read_text() == "someone else's data\n"
        assert not Path(f"{path}.checkpoint").exists()

        output = CheckpointedOutput(path, identity=IDENTITY, fresh=True)
        output.close()
        assert path.read_text() == ""

    def test_an_empty_output_without_a_checkpoint_is_used(self, tmp_path: Path) -> None:
        """An empty file (made by touch or mktemp) has nothing to lose."""
        path = tmp_path / "crawl.jsonl"
        path.touch()

        output = CheckpointedOutput(path, identity=IDENTITY)
        output.commit([("Project", 1)], body("a"), {"Project": 1})
        output.close()
        assert path.read_text() == "a\n"

    def test_a_second_output_on_the_same_files_is_refused_until_closed(
        self, tmp_path: Path
    ) -> None:
        """The output and its checkpoint are locked while open: another opens
        nothing and changes nothing, even with fresh or another checkpoint,
        until it is closed."""
        path = tmp_path / "crawl.jsonl"
        first = CheckpointedOutput(path, identity=IDENTITY)
        first.commit([("Project", 1)], body("a"), {"Project": 1})

        for fresh in (False, True):
            with pytest.raises(OutputBusyError, match="another crawl"):
                CheckpointedOutput(path, identity=IDENTITY, fresh=fresh)
            # Naming another checkpoint for the same output does not get past.
            elsewhere = tmp_path / "elsewhere.checkpoint"
            with pytest.raises(OutputBusyError, match="another crawl"):
                CheckpointedOutput(path, elsewhere, identity=IDENTITY, fresh=fresh)
            assert not elsewhere.exists()
        first.commit([("Project", 2)], body("b"), {"Project": 1})
        first.close()
        first.close()

        again = CheckpointedOutput(path, identity=IDENTITY)
        again.close()
        assert again.done == {("Project", 1), ("Project", 2)}
        assert path.read_text() == "a\nb\n"


class TestStreamOutput:
    def test_units_are_written_in_order_and_nothing_is_done(self) -> None:
        """Standard output gets every unit's lines; nothing can resume."""
        stream = io.BytesIO()
        output = StreamOutput(stream)
        output.commit([("Project", 1)], body("a", "b"), {"Project": 2})
        output.commit([("Project", 2)], body("c"), {"Project": 1})
        assert not output.complete
        output.finish()

        assert stream.getvalue() == b"a\nb\nc\n"
        assert output.done == frozenset()
        assert output.complete
