"""Where a crawl's records go, and how an interrupted crawl picks up.

A crawl hands its output one *unit* at a time: the records of a few
top-level containers, complete, together with the keys of those containers.
:class:`StreamOutput` writes them to a stream and remembers nothing.
:class:`CheckpointedOutput` appends them to a file and then records, in a
checkpoint file beside it, which containers are done and how long the
output was once they were written.

Resuming reads the checkpoint, cuts the output back to the length its last
complete entry names, and skips the containers it lists. Whatever was written
after that entry (a unit whose checkpoint line never made it, or half a
line) is cut away and crawled again, so nothing is lost or written twice.
Each file is flushed after every unit; a crash of the process loses at most
the units in flight. After a power loss the output may be shorter than the
checkpoint says: entries past the end of the output are dropped as well.

While open, a :class:`CheckpointedOutput` holds an exclusive lock on its
output and its checkpoint, so that two crawls never write either at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

__all__ = [
    "CHECKPOINT_SUFFIX",
    "CheckpointError",
    "CheckpointedOutput",
    "ContainerKey",
    "CrawlOutput",
    "OutputBusyError",
    "StreamOutput",
]

#: What a checkpoint file's name adds to the output's.
CHECKPOINT_SUFFIX = ".checkpoint"

_FORMAT = "aiomero-crawl-checkpoint"
_VERSION = 1

#: A top-level container: its model class name and id.
ContainerKey = tuple[str, int]


class CheckpointError(Exception):
    """A checkpoint that cannot be resumed: unreadable, written by another
    version, or by a crawl with other options; or output files that cannot
    be used as given. The message says which."""


class OutputBusyError(CheckpointError):
    """Another crawl has the output (its checkpoint) open."""


class CrawlOutput(Protocol):
    """What the crawl engine needs from its output."""

    @property
    def done(self) -> frozenset[ContainerKey]:
        """Top-level containers finished by an earlier run."""

    @property
    def previous_counts(self) -> Mapping[str, int]:
        """Records per type written by earlier runs."""

    @property
    def complete(self) -> bool:
        """Whether an earlier run finished the whole crawl."""

    def commit(
        self,
        keys: Sequence[ContainerKey],
        body: IO[bytes],
        counts: Mapping[str, int],
    ) -> None:
        """Append ``body`` (JSON lines) as the records of ``keys``."""

    def finish(self) -> None:
        """Record that the crawl is complete."""

    def close(self) -> None:
        """Flush and close; safe to call twice."""


class StreamOutput:
    """Records to a binary stream (standard output), with no checkpoint."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._complete = False

    @property
    def done(self) -> frozenset[ContainerKey]:
        return frozenset()

    @property
    def previous_counts(self) -> Mapping[str, int]:
        return {}

    @property
    def complete(self) -> bool:
        """Whether this run wrote the whole crawl."""
        return self._complete

    def commit(
        self,
        keys: Sequence[ContainerKey],
        body: IO[bytes],
        counts: Mapping[str, int],
    ) -> None:
        body.seek(0)
        shutil.copyfileobj(body, self._stream)
        self._stream.flush()

    def finish(self) -> None:
        self._stream.flush()
        self._complete = True

    def close(self) -> None:
        # A closed reader (a pipe into `head`) must not turn into a traceback.
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._stream.flush()


class CheckpointedOutput:
    """Records appended to ``path``; progress kept in ``checkpoint``.

    ``identity`` describes the crawl (server, user, groups, shard, ...): a
    checkpoint written with another identity is refused with
    :class:`CheckpointError` rather than mixed in. ``fresh`` ignores any
    checkpoint and starts the output anew; without it, an output file that
    has data but no checkpoint is refused rather than emptied, and so is a
    checkpoint that is the output itself (:class:`CheckpointError`). The
    files are opened, and both locked, by the constructor, which
    raises :class:`OutputBusyError` when another output holds the lock and
    ``OSError`` when the files cannot be opened; :meth:`close` releases them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        identity: Mapping[str, Any],
        fresh: bool = False,
    ) -> None:
        self.path = Path(path)
        self.checkpoint = (
            Path(checkpoint)
            if checkpoint is not None
            else Path(f"{self.path}{CHECKPOINT_SUFFIX}")
        )
        self._identity = json.loads(json.dumps(dict(identity)))
        self._done: set[ContainerKey] = set()
        self._counts: dict[str, int] = {}
        self._complete = False
        self.resumed = False

        if _same_file(self.path, self.checkpoint):
            raise CheckpointError(
                f"{self.checkpoint}: the checkpoint must not be the output itself"
            )
        # Both files are locked: a second crawl may name another checkpoint
        # for the same output, or the same checkpoint for another output.
        created = [p for p in (self.path, self.checkpoint) if not p.exists()]
        self._locks: list[int] = []
        try:
            for path in (self.path, self.checkpoint):
                path.parent.mkdir(parents=True, exist_ok=True)
                self._locks.append(_lock(path))
            # An empty checkpoint is one whose first run stopped before its
            # header was written.
            if fresh or self.checkpoint.stat().st_size == 0:
                self._refuse_unvouched_output(fresh)
                self._start_anew()
            else:
                self._resume()
            self._out = open(self.path, "ab")  # noqa: SIM115 - lives as long as self
            self._log = open(self.checkpoint, "ab")  # noqa: SIM115
        except BaseException:
            for path in created:
                with contextlib.suppress(OSError):
                    if path.stat().st_size == 0:
                        path.unlink()
            self._unlock()
            raise

    # -- opening ---------------------------------------------------------

    def _refuse_unvouched_output(self, fresh: bool) -> None:
        """An output with data and no checkpoint is not ours to empty."""
        if fresh or not self.path.is_file() or self.path.stat().st_size == 0:
            return
        raise CheckpointError(
            f"{self.path}: exists and has no checkpoint ({self.checkpoint}); "
            "use --fresh to overwrite it"
        )

    def _start_anew(self) -> None:
        header = {"format": _FORMAT, "version": _VERSION, "crawl": self._identity}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb"):
            pass
        with open(self.checkpoint, "wb") as log:
            log.write(_line(header))

    def _resume(self) -> None:
        data = self.checkpoint.read_bytes()
        entries = list(_complete_lines(data))
        if not entries:
            raise CheckpointError(f"{self.checkpoint}: empty or unreadable")
        header, header_end = entries[0]
        if header.get("format") != _FORMAT:
            raise CheckpointError(f"{self.checkpoint}: not a crawl checkpoint")
        if header.get("version") != _VERSION:
            raise CheckpointError(
                f"{self.checkpoint}: written by checkpoint format version "
                f"{header.get('version')}, this is version {_VERSION}"
            )
        if header.get("crawl") != self._identity:
            raise CheckpointError(
                f"{self.checkpoint}: written by a crawl with other options "
                f"({_difference(header.get('crawl'), self._identity)}); "
                "run with the same options, or with --fresh to start over"
            )
        output_size = self.path.stat().st_size if self.path.exists() else 0

        # Keep the entries whose data the output still holds, in order.
        offset, keep_until = 0, header_end
        for entry, end in entries[1:]:
            if int(entry.get("offset", -1)) > output_size:
                break
            offset, keep_until = int(entry["offset"]), end
            if entry.get("complete"):
                self._complete = True
                continue
            self._done.update((str(k), int(i)) for k, i in entry.get("done", ()))
            for kind, count in entry.get("counts", {}).items():
                self._counts[kind] = self._counts.get(kind, 0) + int(count)

        # Cut away what no checkpoint entry vouches for.
        with open(self.checkpoint, "r+b") as log:
            log.truncate(keep_until)
        with open(self.path, "ab") as out:
            out.truncate(offset)
        self.resumed = True

    # -- the CrawlOutput protocol ----------------------------------------

    @property
    def done(self) -> frozenset[ContainerKey]:
        return frozenset(self._done)

    @property
    def previous_counts(self) -> Mapping[str, int]:
        return dict(self._counts)

    @property
    def complete(self) -> bool:
        return self._complete

    def commit(
        self,
        keys: Sequence[ContainerKey],
        body: IO[bytes],
        counts: Mapping[str, int],
    ) -> None:
        """Append the unit's records, then the checkpoint entry vouching for
        them; each file is flushed before the next step."""
        body.seek(0)
        shutil.copyfileobj(body, self._out)
        self._out.flush()
        entry = {
            "done": [[kind, oid] for kind, oid in keys],
            "offset": self._out.tell(),
            "counts": dict(counts),
        }
        self._log.write(_line(entry))
        self._log.flush()
        self._done.update(keys)

    def finish(self) -> None:
        """Mark the crawl complete; a later run with the same options does
        nothing but report it."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._log.write(_line({"complete": True, "offset": self._out.tell()}))
        self._log.flush()
        os.fsync(self._log.fileno())
        self._complete = True

    def close(self) -> None:
        try:
            for handle in (self._out, self._log):
                if not handle.closed:
                    handle.flush()
                    handle.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        while self._locks:
            os.close(self._locks.pop())


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.samefile(b)
    except OSError:
        return False


def _lock(path: Path) -> int:
    """A descriptor of ``path`` (created if missing) holding an exclusive
    lock on it; raises :class:`OutputBusyError` if another holds one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputBusyError(
            f"{path}: this output is being written by another crawl"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _line(entry: Mapping[str, Any]) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def _complete_lines(data: bytes) -> Iterable[tuple[dict[str, Any], int]]:
    """Each whole, parseable JSON object line and the offset just past it;
    stops at the first line that is torn or not JSON."""
    position = 0
    while True:
        end = data.find(b"\n", position)
        if end < 0:
            return
        try:
            entry = json.loads(data[position:end])
        except ValueError:
            return
        if not isinstance(entry, dict):
            return
        position = end + 1
        yield entry, position


def _difference(old: Any, new: Mapping[str, Any]) -> str:
    if not isinstance(old, dict):
        return "no options recorded"
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in changed)
