"""Crawl an OMERO server's hierarchy: concurrent, resumable, shardable.

::

    async with AsyncGatewayPool(user, password, host=host, max_size=8) as pool:
        output = CheckpointedOutput("crawl.jsonl", identity=options.identity())
        try:
            summary = await Crawler(pool, output, options).run()
        finally:
            output.close()

:class:`Crawler` walks projects, datasets and images, and screens, plates,
wells and images, writing one JSON record per object and parent
(:mod:`aiomero.crawl.records`). :class:`CheckpointedOutput` lets a crawl
that was interrupted resume where it stopped (:mod:`aiomero.crawl.output`).
"""

from __future__ import annotations

from .engine import Crawler, UnknownGroupError
from .options import CrawlOptions, CrawlStats, CrawlSummary
from .output import (
    CHECKPOINT_SUFFIX,
    CheckpointedOutput,
    CheckpointError,
    CrawlOutput,
    OutputBusyError,
    StreamOutput,
)
from .records import KINDS, RECORD_KEYS, well_label

__all__ = [
    "CHECKPOINT_SUFFIX",
    "KINDS",
    "RECORD_KEYS",
    "CheckpointError",
    "CheckpointedOutput",
    "CrawlOptions",
    "CrawlOutput",
    "CrawlStats",
    "CrawlSummary",
    "Crawler",
    "OutputBusyError",
    "StreamOutput",
    "UnknownGroupError",
    "well_label",
]
