"""Projection rows turned into Python values, as omero.rtypes.unwrap does."""

from __future__ import annotations

import omero.rtypes as rt
from omero.rtypes import unwrap

from aiomero.queries import convert_rows


def test_every_kind_of_cell_reads_as_unwrap_reads_it() -> None:
    """Plain cells read directly and others through unwrap give the same
    values as unwrap for every cell."""
    row = [
        rt.rlong(7),
        rt.rint(3),
        rt.rstring("name"),
        rt.rbool(True),
        rt.rdouble(1.5),
        rt.rfloat(2.5),
        rt.rtime(1_600_000_000_000),
        rt.rlist([rt.rlong(1), rt.rstring("a")]),
        rt.rmap({"k": rt.rint(2)}),
        None,
    ]
    assert convert_rows([row, row]) == [[unwrap(c) for c in row]] * 2


def test_no_rows_give_no_rows() -> None:
    """An empty result stays empty."""
    assert convert_rows([]) == []
