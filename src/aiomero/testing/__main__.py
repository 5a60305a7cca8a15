"""Serve an emulated OMERO server: ``python -m aiomero.testing --help``."""

from __future__ import annotations

import sys

from aiomero.testing.command import serve

if __name__ == "__main__":
    sys.exit(serve())
