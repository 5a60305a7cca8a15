"""The catalog the emulator serves in scenarios 1 to 4.

One user, ``bench`` (password ``bench-pw``), alone in the group
``bench-lab``, owns ten projects: ``getObjects("Project")`` returns ten
rows, each with its owner and creation event, as on a real server.
"""

from __future__ import annotations

from aiomero.testing import Catalog

USER = "bench"
PASSWORD = "bench-pw"
PROJECTS = 10


def bench_catalog() -> Catalog:
    """Ten projects of ``bench`` in ``bench-lab``."""
    catalog = Catalog()
    catalog.add_group("bench-lab")
    catalog.add_user(USER, PASSWORD, groups=["bench-lab"])
    for n in range(PROJECTS):
        catalog.add_project(f"project-{n:02d}", owner=USER, group="bench-lab")
    return catalog
