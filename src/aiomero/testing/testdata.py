"""The default catalog of the emulator, on which the tests rely.

It is what :func:`aiomero.testing.catalog.default_catalog` returns, built on
top of the users and groups every catalog has:

========  ============  ============================================
 id        user          groups (default first; * = leader)
========  ============  ============================================
 0         root          system, user (full admin, password ``omero``)
 1         guest         guest (password ``guest``)
 2         operator      read-only-lab, system, user; admin with only
                         ModifyUser, ReadSession and Sudo
 3         alice         private-lab*, read-only-lab, user
 4         bob           read-only-lab*, private-lab, annotate-lab, user
 5         carol         annotate-lab*, read-write-lab, user
 6         dave          read-write-lab*, private-lab, user
 7         erin          read-only-lab; inactive (not in ``user``)
========  ============  ============================================

Passwords are the name followed by ``-pw`` (``alice-pw``), except root's and
guest's. Groups 3 to 6 are ``private-lab`` (rw----), ``read-only-lab``
(rwr---), ``annotate-lab`` (rwra--) and ``read-write-lab`` (rwrw--).

Data, by group (P project, D dataset, I image, S screen, Pl plate):

- private-lab: alice's P ``alice-private`` with D ``alice-private-ds`` (I
  ``a1.tif``, ``a2.tif``); bob's P ``bob-private`` with D ``bob-private-ds``
  (I ``b1.tif``).
- read-only-lab: bob's P ``bob-shared`` with D ``ro-ds-1`` (I ``ro-1.tif``,
  ``ro-2.tif``, ``ro-both.tif``) and D ``ro-ds-2`` (I ``ro-both.tif``,
  ``ro-3.tif``); alice's P ``alice-shared`` with D ``alice-ro-ds`` (I
  ``alice-ro.tif``); bob's S ``bob-screen`` with Pl ``ro-plate`` (wells A1,
  A2, B1, B2, one image each: ``ro-plate-A1.tif``...); bob's orphaned D
  ``ro-orphan-ds`` (no images) and orphaned I ``ro-orphan.tif``.
- annotate-lab: carol's P ``carol-annotate`` with D ``an-ds`` (I ``an-1.tif``).
- read-write-lab: dave's P ``dave-rw`` with D ``rw-ds`` (I ``rw-1.tif``,
  ``rw-2.tif``); carol's S ``carol-screen`` with Pl ``rw-plate`` (wells A1
  and A2 with two images each: ``rw-plate-A1-0.tif``...); carol's orphaned
  Pl ``rw-orphan-plate`` (well A1 with no image).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiomero.testing.people import PRIVATE, READ_ANNOTATE, READ_ONLY, READ_WRITE

if TYPE_CHECKING:
    from aiomero.testing.catalog import Catalog

__all__ = ["fill_default_catalog"]


def fill_default_catalog(c: Catalog) -> None:
    """Add the default catalog's groups, users and data to a new catalog."""
    private = c.add_group("private-lab", PRIVATE)
    ro = c.add_group("read-only-lab", READ_ONLY)
    ann = c.add_group("annotate-lab", READ_ANNOTATE)
    rw = c.add_group("read-write-lab", READ_WRITE)
    c.add_user(
        "operator",
        "operator-pw",
        groups=[ro],
        admin=True,
        privileges=["ModifyUser", "ReadSession", "Sudo"],
    )
    c.add_user("alice", "alice-pw", groups=[private, ro], leader_of=[private])
    c.add_user("bob", "bob-pw", groups=[ro, private, ann], leader_of=[ro])
    c.add_user("carol", "carol-pw", groups=[ann, rw], leader_of=[ann])
    c.add_user("dave", "dave-pw", groups=[rw, private], leader_of=[rw])
    c.add_user("erin", "erin-pw", groups=[ro], active=False)

    # private-lab: only leaders see past their own rows
    p = c.add_project("alice-private", owner="alice", group=private)
    d = c.add_dataset("alice-private-ds", owner="alice", group=private, project=p)
    for name in ("a1.tif", "a2.tif"):
        c.add_image(name, owner="alice", group=private, dataset=d)
    p = c.add_project("bob-private", owner="bob", group=private)
    d = c.add_dataset("bob-private-ds", owner="bob", group=private, project=p)
    c.add_image("b1.tif", owner="bob", group=private, dataset=d)

    # read-only-lab: an image in two datasets, a screen, orphans
    p = c.add_project("bob-shared", owner="bob", group=ro)
    d1 = c.add_dataset("ro-ds-1", owner="bob", group=ro, project=p)
    d2 = c.add_dataset("ro-ds-2", owner="bob", group=ro, project=p)
    c.add_image("ro-1.tif", owner="bob", group=ro, dataset=d1)
    c.add_image("ro-2.tif", owner="bob", group=ro, dataset=d1)
    c.add_image("ro-both.tif", owner="bob", group=ro, dataset=[d1, d2])
    c.add_image("ro-3.tif", owner="bob", group=ro, dataset=d2)
    p = c.add_project("alice-shared", owner="alice", group=ro)
    d = c.add_dataset("alice-ro-ds", owner="alice", group=ro, project=p)
    c.add_image("alice-ro.tif", owner="alice", group=ro, dataset=d)
    s = c.add_screen("bob-screen", owner="bob", group=ro)
    plate = c.add_plate("ro-plate", owner="bob", group=ro, screen=s)
    for row, column in ((0, 0), (0, 1), (1, 0), (1, 1)):
        well = c.add_well(plate=plate, row=row, column=column)
        label = f"{'AB'[row]}{column + 1}"
        c.add_image(f"ro-plate-{label}.tif", owner="bob", group=ro, well=well)
    c.add_dataset("ro-orphan-ds", owner="bob", group=ro)
    c.add_image("ro-orphan.tif", owner="bob", group=ro)

    # annotate-lab
    p = c.add_project("carol-annotate", owner="carol", group=ann)
    d = c.add_dataset("an-ds", owner="carol", group=ann, project=p)
    c.add_image("an-1.tif", owner="carol", group=ann, dataset=d)

    # read-write-lab: two fields per well, an empty orphaned plate
    p = c.add_project("dave-rw", owner="dave", group=rw)
    d = c.add_dataset("rw-ds", owner="dave", group=rw, project=p)
    c.add_image("rw-1.tif", owner="dave", group=rw, dataset=d)
    c.add_image("rw-2.tif", owner="dave", group=rw, dataset=d)
    s = c.add_screen("carol-screen", owner="carol", group=rw)
    plate = c.add_plate("rw-plate", owner="carol", group=rw, screen=s)
    for column in (0, 1):
        well = c.add_well(plate=plate, row=0, column=column)
        for field_index in (0, 1):
            name = f"rw-plate-A{column + 1}-{field_index}.tif"
            c.add_image(name, owner="carol", group=rw, well=well)
    plate = c.add_plate("rw-orphan-plate", owner="carol", group=rw)
    c.add_well(plate=plate, row=0, column=0)
