"""``python -m aiomero.cli``: the ``aiomero`` command."""

from __future__ import annotations

from aiomero.cli import main

if __name__ == "__main__":
    main()
