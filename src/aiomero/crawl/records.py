"""What a crawl writes: one record per object under one parent.

A record is a plain mapping serialised as one JSON line. An object reached
through two parents (an image in two datasets) gives two records that differ
in ``parent_type`` and ``parent_id``; a top-level container, or an object in
no container, has both set to None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["KINDS", "RECORD_KEYS", "record_line", "well_label"]

#: The kinds a crawl reports, in the order summaries list them.
KINDS = ("Project", "Dataset", "Screen", "Plate", "Well", "Image")

#: The keys every record has; a Well adds ``row`` and ``column``.
RECORD_KEYS = (
    "type",
    "id",
    "name",
    "parent_type",
    "parent_id",
    "owner_id",
    "owner",
    "group_id",
    "group",
)


def well_label(row: int | None, column: int | None) -> str | None:
    """The usual name of a well: row letters then a one-based column number.

    Rows past ``Z`` continue as ``AA``, ``AB``... as plate readers name them.
    """
    if row is None or column is None:
        return None
    letters = ""
    index = row
    while True:
        letters = chr(ord("A") + index % 26) + letters
        index = index // 26 - 1
        if index < 0:
            break
    return f"{letters}{column + 1}"


# One encoder for every record: json.dumps with options other than the
# defaults builds a new encoder at each call (a tenth of the time per line).
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def record_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one line of compact JSON, UTF-8, ending in a newline."""
    return _encode(record).encode() + b"\n"
