"""What an emulated OMERO server holds: users, groups, containers and images.

A :class:`Catalog` is built in code. Users and groups come first
(:meth:`Catalog.add_group`, :meth:`Catalog.add_user`), then the containers
and images they own (:meth:`Catalog.add_project`, :meth:`Catalog.add_image`
and the rest). Every catalog starts with the groups and users a real server
has: the groups ``system`` (0), ``user`` (1) and ``guest`` (2), the full
administrator ``root`` (0, password ``omero``) and ``guest`` (1, password
``guest``). Ids are handed out per kind in the order objects are added, so a
catalog built by the same code always has the same ids.

Users and groups are kept by :class:`~aiomero.testing.directory.Directory`,
which a catalog extends. Containers and images live in *sources*
(:mod:`aiomero.testing.store`): the explicit ones above in
:attr:`Catalog.fixtures`, generated ones such as the IDR-shaped catalog of
:mod:`aiomero.testing.idr` appended to :attr:`Catalog.sources`.

The catalog also answers the queries a client sends (:meth:`find_all_by_query`
and friends, see :mod:`aiomero.testing.query`), seen through a
:class:`Caller`: the user, and the group of the call, decide which rows exist.

:func:`default_catalog` builds the small catalog the tests use, described in
:mod:`aiomero.testing.testdata`.
"""

from __future__ import annotations

from typing import Any

from aiomero.testing.derived import DERIVED as _DERIVED
from aiomero.testing.directory import Directory
from aiomero.testing.people import (
    ALL_ADMIN_PRIVILEGES,
    GUEST_GROUP_ID,
    GUEST_ID,
    PRIVATE,
    READ_ANNOTATE,
    READ_ONLY,
    READ_WRITE,
    ROOT_ID,
    SYSTEM_GROUP_ID,
    USER_GROUP_ID,
    Caller,
    Group,
    User,
)
from aiomero.testing.store import (
    REFERRER_FIELDS,
    Entity,
    FixtureSource,
    Link,
    Record,
    Segment,
    Source,
    Well,
    WellSample,
)

__all__ = [
    "ALL_ADMIN_PRIVILEGES",
    "GUEST_GROUP_ID",
    "GUEST_ID",
    "PRIVATE",
    "READ_ANNOTATE",
    "READ_ONLY",
    "READ_WRITE",
    "ROOT_ID",
    "SYSTEM_GROUP_ID",
    "USER_GROUP_ID",
    "Caller",
    "Catalog",
    "Group",
    "User",
    "default_catalog",
]

_Ref = int | list[int] | tuple[int, ...] | None


class Catalog(Directory):
    """Users, groups and the data they own, and the queries over them.

    Lookups of unknown ids raise KeyError; queries raise the omero
    exceptions a server would (see :mod:`aiomero.testing.query`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.fixtures = FixtureSource()
        self.sources: list[Source] = [self.fixtures]
        self._engine: Any = None

    # -- containers and images ---------------------------------------------

    def add_project(
        self, name: str, *, owner: User | str, group: Group | str, description: str = ""
    ) -> int:
        """Add a Project; return its id. See :meth:`add_dataset` for errors."""
        return self._add_entity("Project", name, owner, group, description).id

    def add_dataset(
        self,
        name: str,
        *,
        owner: User | str,
        group: Group | str,
        project: _Ref = None,
        description: str = "",
    ) -> int:
        """Add a Dataset, linked to the project id(s) given; return its id.

        Raises ValueError if the owner is not a member of the group, or a
        parent does not exist or lives in another group (a server refuses
        links across groups).
        """
        row = self._add_entity("Dataset", name, owner, group, description)
        self._link_to("ProjectDatasetLink", project, row)
        return row.id

    def add_image(
        self,
        name: str,
        *,
        owner: User | str,
        group: Group | str,
        dataset: _Ref = None,
        well: int | None = None,
        description: str = "",
        dims: tuple[int, int, int, int, int] = (512, 512, 1, 1, 1),
    ) -> int:
        """Add an Image in the dataset(s) or the well given; return its id.

        ``dims`` is its size (x, y, z, c, t). In a well the image becomes the
        next field (WellSample). Raises ValueError as :meth:`add_dataset`.
        """
        row = self._add_entity("Image", name, owner, group, description, dims)
        self._link_to("DatasetImageLink", dataset, row)
        if well is not None:
            parent = self._parent("Well", well, row)
            self.fixtures.add(
                WellSample(
                    self.allocate("WellSample"),
                    row.owner_id,
                    row.group_id,
                    row.event_id,
                    parent.id,
                    row.id,
                )
            )
        return row.id

    def add_screen(
        self, name: str, *, owner: User | str, group: Group | str, description: str = ""
    ) -> int:
        """Add a Screen; return its id. See :meth:`add_dataset` for errors."""
        return self._add_entity("Screen", name, owner, group, description).id

    def add_plate(
        self,
        name: str,
        *,
        owner: User | str,
        group: Group | str,
        screen: _Ref = None,
        description: str = "",
    ) -> int:
        """Add a Plate, linked to the screen id(s) given; return its id."""
        row = self._add_entity("Plate", name, owner, group, description)
        self._link_to("ScreenPlateLink", screen, row)
        return row.id

    def add_well(self, *, plate: int, row: int, column: int) -> int:
        """Add a Well of ``plate`` at zero-based ``row`` and ``column``.

        The well belongs to the plate's owner and group. Raises ValueError
        for an unknown plate.
        """
        parent = self.get("Plate", plate)
        if parent is None:
            raise ValueError(f"unknown Plate {plate}")
        well = Well(
            self.allocate("Well"),
            parent.owner_id,
            parent.group_id,
            self.allocate_events(),
            parent.id,
            row,
            column,
        )
        self.fixtures.add(well)
        return well.id

    def _add_entity(
        self,
        kind: str,
        name: str,
        owner: User | str,
        group: Group | str,
        description: str,
        dims: tuple[int, int, int, int, int] | None = None,
    ) -> Entity:
        user, home = self._user_of(owner), self._group_of(group)
        if home.id not in user.group_ids:
            raise ValueError(f"{user.name} is not a member of {home.name}")
        row = Entity(
            kind,
            self.allocate(kind),
            user.id,
            home.id,
            self.allocate_events(),
            name,
            description,
            dims,
        )
        self.fixtures.add(row)
        return row

    def _link_to(self, kind: str, parents: _Ref, child: Record) -> None:
        if parents is None:
            return
        parent_kind = kind.removesuffix(child.kind + "Link")
        wanted = [parents] if isinstance(parents, int) else list(parents)
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"{child.kind} {child.id} linked twice to one parent")
        for parent_id in wanted:
            parent = self._parent(parent_kind, parent_id, child)
            self.fixtures.add(
                Link(
                    kind,
                    self.allocate(kind),
                    child.owner_id,
                    child.group_id,
                    child.event_id,
                    parent.id,
                    child.id,
                )
            )

    def _parent(self, kind: str, id: int, child: Record) -> Record:
        parent: Record | None = self.get(kind, id)
        if parent is None:
            raise ValueError(f"unknown {kind} {id}")
        if parent.group_id != child.group_id:
            raise ValueError(f"{kind} {id} is in another group than the child")
        return parent

    # -- rows, across sources ----------------------------------------------

    def get(self, kind: str, id: int) -> Any:
        """Return the row of ``kind`` with ``id``, or None.

        Users, groups and memberships come from the catalog itself, pixels
        and channels are derived from their image, the rest comes from the
        first source that has it.
        """
        derived = _DERIVED.get(kind)
        if derived is not None:
            return derived.get(self, id)
        for source in self.sources:
            row = source.get(kind, id)
            if row is not None:
                return row
        return None

    def segments(self, kind: str) -> list[Segment]:
        """Return every row of ``kind``, in id order, as segments."""
        derived = _DERIVED.get(kind)
        if derived is not None:
            return derived.segments(self)
        found: list[Segment] = []
        for source in self.sources:
            found += source.segments(kind)
        found.sort(key=lambda segment: segment.rows[0].id)
        return found

    def referrers(self, kind: str, field: str, target_id: int) -> list[Segment]:
        """Return the rows of ``kind`` whose ``field`` points at ``target_id``.

        Rows come in id order within each segment (links: in order of the
        id at their other end). Raises KeyError for a kind and field that
        cannot be looked up this way (see :func:`can_find_referrers`).
        """
        derived = _DERIVED.get(kind)
        if derived is not None:
            return derived.referrers(self, field, target_id)
        if field not in REFERRER_FIELDS.get(kind, ()):
            raise KeyError((kind, field))
        found = []
        for source in self.sources:
            segment = source.referrers(kind, field, target_id)
            if segment.rows:
                found.append(segment)
        return found

    def names_follow_ids(self, kind: str) -> bool:
        """Tell whether ordering ``kind`` by lower-cased name orders by id."""
        holders = [s for s in self.sources if s.segments(kind)]
        return len(holders) <= 1 and all(s.names_follow_ids(kind) for s in holders)

    # -- queries -----------------------------------------------------------

    @property
    def engine(self) -> Any:
        """The query engine over this catalog, made on first use."""
        if self._engine is None:
            from aiomero.testing.query import QueryEngine

            self._engine = QueryEngine(self)
        return self._engine

    def find_all_by_query(self, hql: str, params: Any, caller: Caller) -> list[Any]:
        """Answer IQuery.findAllByQuery: the objects ``hql`` selects.

        ``params`` is an omero.sys.Parameters or None. Raises
        omero.ApiUsageException for a query the emulator does not
        understand, omero.SecurityViolation for a group the caller may not
        read, omero.ValidationException for a parameter of the wrong type.
        """
        return self.engine.find_all(hql, params, caller)  # type: ignore[no-any-return]

    def find_by_query(self, hql: str, params: Any, caller: Caller) -> Any:
        """Answer IQuery.findByQuery: the one object selected, or None.

        Raises omero.ApiUsageException if the query selects more than one
        row, and as :meth:`find_all_by_query` otherwise.
        """
        return self.engine.find_one(hql, params, caller)

    def find(self, class_name: str, id: int, caller: Caller) -> Any:
        """Answer IQuery.find / get: the object ``class_name`` ``id``, or None."""
        return self.engine.find(class_name, id, caller)

    def projection(self, hql: str, params: Any, caller: Caller) -> list[list[Any]]:
        """Answer IQuery.projection: rows of omero.rtypes cells (or None)."""
        return self.engine.projection(hql, params, caller)  # type: ignore[no-any-return]

    def collection_count(
        self,
        type_name: str,
        property: str,
        ids: list[int],
        options: Any,
        caller: Caller,
    ) -> dict[int, int]:
        """Answer IContainer.getCollectionCount: visible children per id.

        ``type_name`` may be qualified (``omero.model.Project``); ``property``
        is a collection such as ``datasetLinks``. Raises
        omero.ApiUsageException for an unknown type or collection.
        """
        return self.engine.collection_count(  # type: ignore[no-any-return]
            type_name, property, ids, options, caller
        )

    def get_images(
        self, root_type: str, ids: list[int], options: Any, caller: Caller
    ) -> list[Any]:
        """Answer IContainer.getImages: the images in or under the containers
        ``ids`` of ``root_type`` (Image, Dataset, Project, Well, Plate or
        Screen), each with its pixels and pixels type loaded.

        Raises omero.ApiUsageException for another type.
        """
        return self.engine.images(root_type, ids, caller)  # type: ignore[no-any-return]

    def visible_count(self, class_name: str, caller: Caller) -> int:
        """Return how many rows of ``class_name`` the caller can see."""
        return self.engine.visible_count(class_name, caller)  # type: ignore[no-any-return]


def default_catalog() -> Catalog:
    """Build the small deterministic catalog of :mod:`aiomero.testing.testdata`."""
    from aiomero.testing.testdata import fill_default_catalog

    catalog = Catalog()
    fill_default_catalog(catalog)
    return catalog
