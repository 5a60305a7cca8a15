"""The emulator's query engine, called directly with omero-py's own objects.

The queries are the ones BlitzGateway sends: built by its own query builders
where it has them (``BlitzGateway.buildQuery``, which does no I/O), copied
from its methods otherwise. Ids refer to :mod:`aiomero.testing.testdata`.
"""

from __future__ import annotations

import types
from typing import Any

import omero
import omero.clients  # registers ParametersI
import pytest
from omero.gateway import BlitzGateway
from omero.rtypes import rlist, rlong, rstring, unwrap
from omero.sys import Filter, Parameters, ParametersI

from aiomero.testing import run as run_module
from aiomero.testing.catalog import ROOT_ID, Caller, Catalog, default_catalog
from aiomero.testing.idr import idr_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def who(catalog: Catalog, name: str = "root", group: int = -1) -> Caller:
    user = catalog.user_by_name(name)
    assert user is not None
    return Caller(user, group)


def gateway_query(kind: str, ids=None, params=None, attributes=None, opts=None):
    """The (query, params) BlitzGateway.getObjects would send."""
    query, params, _wrapper = BlitzGateway.buildQuery(
        None, kind, ids, params, attributes, opts
    )
    return query, params


def get_objects(catalog: Catalog, caller: Caller, kind: str, **kwargs: Any) -> list:
    query, params = gateway_query(kind, **kwargs)
    return catalog.find_all_by_query(query, params, caller)


def names(objects: list) -> list[str]:
    return [o.name.val for o in objects]


def cells(rows: list[list[Any]]) -> list[list[Any]]:
    return [[unwrap(cell) for cell in row] for row in rows]


def params_with(**values: Any) -> ParametersI:
    params = ParametersI()
    for name, value in values.items():
        if isinstance(value, list):
            params.map[name] = rlist([rlong(v) for v in value])
        elif isinstance(value, str):
            params.map[name] = rstring(value)
        else:
            params.map[name] = rlong(value)
    return params


class TestVisibility:
    @pytest.mark.parametrize(
        ("user", "group", "expected"),
        [
            (
                "alice",
                -1,
                ["alice-private", "bob-private", "bob-shared", "alice-shared"],
            ),
            (
                "bob",
                -1,
                ["bob-private", "bob-shared", "alice-shared", "carol-annotate"],
            ),
            ("bob", 3, ["bob-private"]),
            ("bob", 4, ["bob-shared", "alice-shared"]),
            ("carol", -1, ["carol-annotate", "dave-rw"]),
            ("dave", -1, ["dave-rw"]),
            ("erin", -1, ["bob-shared", "alice-shared"]),
            ("operator", 5, ["carol-annotate"]),
            ("root", 6, ["dave-rw"]),
        ],
    )
    def test_list_projects_shows_what_the_group_rules_allow(
        self, catalog, user, group, expected
    ) -> None:
        """Private groups show members their own rows, leaders and admins all."""
        found = get_objects(catalog, who(catalog, user, group), "Project")
        assert names(found) == expected

    def test_root_sees_everything_in_all_groups(self, catalog) -> None:
        """An admin asking group -1 sees every row."""
        assert len(get_objects(catalog, who(catalog), "Image")) == 20
        assert catalog.visible_count("Image", who(catalog)) == 20

    def test_other_group_is_a_security_violation(self, catalog) -> None:
        """Asking a group one is not in raises SecurityViolation."""
        with pytest.raises(omero.SecurityViolation, match="not a member"):
            get_objects(catalog, who(catalog, "carol", 3), "Project")

    def test_people_are_visible_to_everyone(self, catalog) -> None:
        """Experimenters and groups ignore group visibility."""
        found = get_objects(catalog, who(catalog, "guest"), "Experimenter")
        assert len(found) == len(catalog.users)
        groups = get_objects(catalog, who(catalog, "guest"), "ExperimenterGroup")
        assert len(groups) == len(catalog.groups)

    def test_joined_rows_obey_visibility_too(self, catalog) -> None:
        """A member of a private group fetching links sees only its own."""
        query = (
            "select l from DatasetImageLink l join fetch l.child where l.parent.id = 1"
        )
        assert catalog.find_all_by_query(query, None, who(catalog, "bob")) == []
        assert len(catalog.find_all_by_query(query, None, who(catalog, "alice"))) == 2


class TestGatewayQueries:
    def test_owner_filter_of_list_projects(self, catalog) -> None:
        """listProjects(eid) sends ownerId, which becomes owner.id = :eid."""
        params = Parameters()
        params.theFilter = Filter()
        params.theFilter.ownerId = rlong(3)
        found = get_objects(catalog, who(catalog), "Project", params=params)
        assert names(found) == ["alice-private", "alice-shared"]

    def test_paging_with_order_by(self, catalog) -> None:
        """offset and limit apply after ordering by lower(name)."""
        everything = names(
            get_objects(
                catalog, who(catalog), "Image", opts={"order_by": "lower(obj.name)"}
            )
        )
        assert everything == sorted(everything, key=str.lower)
        page = get_objects(
            catalog,
            who(catalog),
            "Image",
            opts={"order_by": "lower(obj.name)", "limit": 4, "offset": 3},
        )
        assert names(page) == everything[3:7]

    def test_get_object_by_id_and_by_attribute(self, catalog) -> None:
        """getObject's queries find one row by id or by name."""
        query, params = gateway_query("Dataset", ids=[4])
        assert catalog.find_by_query(query, params, who(catalog)).name.val == "ro-ds-2"
        query, params = gateway_query("Dataset", attributes={"name": "an-ds"})
        assert catalog.find_by_query(query, params, who(catalog)).id.val == 7
        query, params = gateway_query("Dataset", ids=[999])
        assert catalog.find_by_query(query, params, who(catalog)) is None

    def test_find_by_query_refuses_several_rows(self, catalog) -> None:
        """findByQuery raises ApiUsageException when more than one row matches."""
        query, params = gateway_query("Project")
        with pytest.raises(omero.ApiUsageException, match="more than one"):
            catalog.find_by_query(query, params, who(catalog))

    def test_find_by_class_and_id(self, catalog) -> None:
        """IQuery.find accepts short and qualified class names."""
        assert catalog.find("Project", 3, who(catalog)).name.val == "bob-shared"
        assert (
            catalog.find("omero.model.ImageI", 6, who(catalog)).name.val
            == "ro-both.tif"
        )
        assert catalog.find("Project", 1, who(catalog, "bob")) is None

    def test_datasets_of_a_project_and_projects_of_a_dataset(self, catalog) -> None:
        """The 'project' and 'dataset' opts join the links."""
        found = get_objects(catalog, who(catalog), "Dataset", opts={"project": 3})
        assert names(found) == ["ro-ds-1", "ro-ds-2"]
        found = get_objects(catalog, who(catalog), "Project", opts={"dataset": 4})
        assert names(found) == ["bob-shared"]

    def test_images_of_a_dataset_with_pixels(self, catalog) -> None:
        """load_pixels fetches pixels and their type; other data stays unloaded."""
        found = get_objects(
            catalog, who(catalog), "Image", opts={"dataset": 4, "load_pixels": True}
        )
        assert names(found) == ["ro-both.tif", "ro-3.tif"]
        pixels = found[0].getPrimaryPixels()
        assert (pixels.sizeX.val, pixels.sizeC.val) == (512, 1)
        assert pixels.pixelsType.value.val == "uint16"
        assert not found[0].isDatasetLinksLoaded()

    def test_images_with_channels(self, catalog) -> None:
        """load_channels fetches channels with their logical channels."""
        (image,) = get_objects(
            catalog, who(catalog), "Image", ids=[6], opts={"load_channels": True}
        )
        (channel,) = image.getPrimaryPixels().copyChannels()
        assert channel.logicalChannel.name.val == "ch0"

    @pytest.mark.parametrize(
        ("kind", "expected"),
        [
            ("Image", ["ro-orphan.tif"]),
            ("Dataset", ["ro-orphan-ds"]),
            ("Plate", ["rw-orphan-plate"]),
        ],
    )
    def test_orphans(self, catalog, kind, expected) -> None:
        """The 'orphaned' opt's not-exists subqueries find unlinked rows."""
        found = get_objects(catalog, who(catalog), kind, opts={"orphaned": True})
        assert names(found) == expected

    def test_list_orphans_query(self, catalog) -> None:
        """listOrphans' query, with its own not-exists clauses, works too."""
        query = (
            "select obj from Dataset obj join fetch obj.details.owner as owner "
            "left outer join fetch obj.details.externalInfo join fetch "
            "obj.details.creationEvent where owner.id = (:eid) and  not exists "
            "(select obl from ProjectDatasetLink as obl where obl.child=obj.id)  "
            "order by lower(obj.name), obj.id"
        )
        params = ParametersI()
        params.exp(4)
        params.map["eid"] = params.theFilter.ownerId
        found = catalog.find_all_by_query(query, params, who(catalog, "bob"))
        assert names(found) == ["ro-orphan-ds"]

    def test_plates_fetch_their_screens(self, catalog) -> None:
        """Plate queries fetch screen links with the screen loaded."""
        found = get_objects(catalog, who(catalog), "Plate", opts={"screen": 2})
        assert names(found) == ["rw-plate"]
        (link,) = found[0].copyScreenLinks()
        assert link.parent.name.val == "carol-screen"

    def test_wells_with_their_images(self, catalog) -> None:
        """load_images fetches each well's fields and their images."""
        wells = get_objects(
            catalog, who(catalog), "Well", opts={"plate": 2, "load_images": True}
        )
        assert [(w.row.val, w.column.val) for w in wells] == [(0, 0), (0, 1)]
        fields = [[s.image.name.val for s in w.copyWellSamples()] for w in wells]
        assert fields == [
            ["rw-plate-A1-0.tif", "rw-plate-A1-1.tif"],
            ["rw-plate-A2-0.tif", "rw-plate-A2-1.tif"],
        ]

    def test_experimenters_of_a_group(self, catalog) -> None:
        """The 'experimentergroup' opt filters through the loaded group map."""
        found = get_objects(
            catalog, who(catalog), "Experimenter", opts={"experimentergroup": 5}
        )
        assert [e.omeName.val for e in found] == ["bob", "carol"]
        # as with Hibernate, a condition on a fetched collection filters it
        (membership,) = found[0].copyGroupExperimenterMap()
        assert membership.parent.name.val == "annotate-lab"

    def test_groups_of_an_experimenter(self, catalog) -> None:
        """The 'experimenter' opt keeps groups with that member."""
        found = get_objects(
            catalog, who(catalog), "ExperimenterGroup", opts={"experimenter": 6}
        )
        assert names(found) == ["user", "private-lab", "read-write-lab"]
        # the condition on the fetched members leaves only the one asked for
        members = {m.child.omeName.val for m in found[2].copyGroupExperimenterMap()}
        assert members == {"dave"}

    def test_find_experimenters_by_name_prefix(self, catalog) -> None:
        """findExperimenters' lower(omeName) like :start query."""
        query = "from Experimenter e where lower(e.omeName) like :start"
        found = catalog.find_all_by_query(query, params_with(start="a%"), who(catalog))
        assert [e.omeName.val for e in found] == ["alice"]

    def test_colleagues_through_an_exists_subquery(self, catalog) -> None:
        """The members-of-led-groups query with a correlated subquery."""
        query = (
            "select e from Experimenter as e where exists "
            "( select gem from GroupExperimenterMap as gem "
            "where gem.child = e.id and gem.parent.id in (:gids)) "
            "order by e.omeName"
        )
        found = catalog.find_all_by_query(query, params_with(gids=[4]), who(catalog))
        assert [e.omeName.val for e in found] == ["alice", "bob", "erin", "operator"]

    def test_list_children_orders_links_by_child_name(self, catalog) -> None:
        """listChildren's link query fetches children and orders by their name."""
        query = (
            "select c from DatasetImageLink as c join fetch c.child as ch "
            "left outer join fetch ch.annotationLinks as ial "
            "left outer join fetch ial.child as a  where c.parent.id=:dsid "
            "order by c.child.name"
        )
        found = catalog.find_all_by_query(query, params_with(dsid=3), who(catalog))
        assert [link.child.name.val for link in found] == [
            "ro-1.tif",
            "ro-2.tif",
            "ro-both.tif",
        ]
        assert found[0].child.isAnnotationLinksLoaded()
        assert found[0].child.sizeOfAnnotationLinks() == 0

    def test_list_parents(self, catalog) -> None:
        """listParents' query finds every link of a child."""
        query = "from DatasetImageLink as c where c.child.id=6"
        found = catalog.find_all_by_query(query, Parameters(), who(catalog))
        assert sorted(link.parent.id.val for link in found) == [3, 4]

    def test_plate_of_an_image(self, catalog) -> None:
        """ImageWrapper.getPlate's query walks back from the image."""
        query = (
            "select well from Well as well join fetch well.details.creationEvent "
            "join fetch well.details.owner join fetch well.details.group "
            "join fetch well.plate as pt left outer join fetch well.wellSamples as ws "
            "left outer join fetch ws.image as img where ws.image.id = :oid"
        )
        (well,) = catalog.find_all_by_query(query, params_with(oid=11), who(catalog))
        assert (well.row.val, well.column.val) == (1, 0)
        assert well.plate.name.val == "ro-plate"

    def test_project_of_an_image_is_distinct(self, catalog) -> None:
        """Selecting a joined alias returns each row once."""
        query = (
            "select p from Image i join i.datasetLinks dl join dl.parent ds "
            "join ds.projectLinks pl join pl.parent p where i.id = 6"
        )
        found = catalog.find_all_by_query(query, None, who(catalog))
        assert names(found) == ["bob-shared"]

    def test_grid_size_and_fields(self, catalog) -> None:
        """PlateWrapper's max(row)/max(column) and minIndex/maxIndex queries."""
        params = ParametersI()
        params.addId(1)
        query = "select max(row), max(column) from Well where plate.id = :id"
        assert cells(catalog.projection(query, params, who(catalog))) == [[1, 1]]
        params = ParametersI()
        params.addId(999)
        assert catalog.projection(query, params, who(catalog)) == [[None, None]]
        query = (
            "select minIndex(ws), maxIndex(ws) from Well w "
            "join w.wellSamples ws where w.plate.id=:oid"
        )
        rows = catalog.projection(query, params_with(oid=2), who(catalog))
        assert cells(rows) == [[0, 1]]

    def test_channel_labels(self, catalog) -> None:
        """getChannelLabels' projection with index() and a null emission wave."""
        params = ParametersI()
        params.addId(6)
        query = (
            "select lc.name, lc.emissionWave.value, index(chan) from Pixels p "
            "join p.image as img join p.channels as chan "
            "join chan.logicalChannel as lc where img.id = :id order by index(chan)"
        )
        assert cells(catalog.projection(query, params, who(catalog))) == [
            ["ch0", None, 0]
        ]

    def test_pixels_with_channels(self, catalog) -> None:
        """The gateway's pixels query fetches channels and logical channels."""
        query = (
            "select p from Pixels p join fetch p.channels as c "
            "join fetch c.logicalChannel as lc where p.id=:pid"
        )
        pixels = catalog.find_by_query(query, params_with(pid=6), who(catalog))
        assert pixels.copyChannels()[0].logicalChannel.isLoaded()

    def test_count_query(self, catalog) -> None:
        """buildCountQuery's count(distinct obj) counts visible rows."""
        fake = types.SimpleNamespace(
            buildQuery=lambda *a, **k: BlitzGateway.buildQuery(None, *a, **k)
        )
        query, params = BlitzGateway.buildCountQuery(fake, "Image", opts={"owner": 4})
        rows = catalog.projection(query, params, who(catalog, "bob"))
        assert cells(rows) == [[10]]

    def test_count_children(self, catalog) -> None:
        """getCollectionCount counts visible links per parent id."""
        counts = catalog.collection_count(
            "omero.model.Project", "datasetLinks", [1, 3, 6], None, who(catalog, "bob")
        )
        assert counts == {1: 0, 3: 2, 6: 0}
        counts = catalog.collection_count(
            "Screen", "plateLinks", [1, 2], None, who(catalog)
        )
        assert counts == {1: 1, 2: 1}

    @pytest.mark.parametrize(
        ("root_type", "ids", "expected"),
        [
            ("Image", [6], ["ro-both.tif"]),
            ("Dataset", [3, 4], ["ro-1.tif", "ro-2.tif", "ro-both.tif", "ro-3.tif"]),
            ("Project", [6], ["rw-1.tif", "rw-2.tif"]),
            ("Well", [5], ["rw-plate-A1-0.tif", "rw-plate-A1-1.tif"]),
            ("Plate", [3], []),
            ("Screen", [1], [f"ro-plate-{w}.tif" for w in ("A1", "A2", "B1", "B2")]),
        ],
    )
    def test_get_images_under_containers(self, catalog, root_type, ids, expected):
        """IContainer.getImages walks down to images and loads their pixels."""
        found = catalog.get_images(root_type, ids, None, who(catalog))
        assert names(found) == expected
        assert all(image.isPixelsLoaded() for image in found)

    def test_annotations_exist_but_are_empty(self, catalog) -> None:
        """Queries on annotation links or acquisitions find nothing."""
        query = (
            "select l from ProjectAnnotationLink as l join fetch l.details.owner "
            "join fetch l.child as ann left outer join fetch ann.file "
            "join fetch l.parent as parent where parent.id in (:pids) and ann.ns = :ns"
        )
        params = params_with(pids=[3], ns="openmicroscopy.org/x")
        assert catalog.find_all_by_query(query, params, who(catalog)) == []
        query = (
            "select pa from PlateAcquisition as pa "
            "join fetch pa.plate as p where p.id=:pid"
        )
        assert catalog.find_all_by_query(query, params_with(pid=1), who(catalog)) == []


class TestHql:
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            (
                "select distinct d from Dataset d join d.imageLinks l "
                "where l.child.id in (6, 7)",
                ["ro-ds-1", "ro-ds-2"],
            ),
            (
                "select i from Image i where i.id in "
                "(select l.child.id from DatasetImageLink l where l.parent.id = 4)",
                ["ro-both.tif", "ro-3.tif"],
            ),
            (
                "select i from Image i where i in "
                "(select l.child from DatasetImageLink l where l.parent.id = 4)",
                ["ro-both.tif", "ro-3.tif"],
            ),
            (
                "select p from Project p where p.id not in "
                "(select l.parent.id from ProjectDatasetLink l where l.child.id < 8) "
                "or upper(p.name) like 'ALICE%'",
                ["alice-private", "alice-shared", "dave-rw"],
            ),
            (
                "select p from Project p where not (p.id >= 2 and p.id <> 6) "
                "and p.description is not null order by p.id desc",
                ["dave-rw", "alice-private"],
            ),
            (
                "select w from Well w left outer join w.wellSamples ws "
                "where ws.id is null",
                [None],
            ),
        ],
    )
    def test_conditions(self, catalog, query, expected) -> None:
        """Subqueries, negations, null tests, like and orderings."""
        found = catalog.find_all_by_query(query, None, who(catalog))
        assert [getattr(o, "name", None) and o.name.val for o in found] == expected

    def test_count_star_and_sum(self, catalog) -> None:
        """count(*) counts rows, sum adds values, min and max pick them."""
        rows = catalog.projection(
            "select count(*), sum(w.row), min(w.column), max(w.id) from Well w",
            None,
            who(catalog),
        )
        assert cells(rows) == [[7, 2, 0, 7]]


class TestObjects:
    def test_details_are_loaded(self, catalog) -> None:
        """Owner, group, permissions and creation event come filled in."""
        (project,) = get_objects(catalog, who(catalog, "alice"), "Project", ids=[3])
        details = project.details
        assert details.owner.omeName.val == "bob"
        assert details.owner.firstName.val == "Bob"
        assert details.group.name.val == "read-only-lab"
        assert str(details.group.details.permissions) == "rwr---"
        assert details.creationEvent.time.val > 0

    def test_permissions_say_what_the_caller_may_do(self, catalog) -> None:
        """Only owners, leaders and admins may edit in a read-only group."""
        (as_alice,) = get_objects(catalog, who(catalog, "alice"), "Project", ids=[3])
        assert not as_alice.details.permissions.canEdit()
        assert not as_alice.details.permissions.canAnnotate()
        (as_bob,) = get_objects(catalog, who(catalog, "bob"), "Project", ids=[3])
        assert as_bob.details.permissions.canEdit()
        (annotate,) = get_objects(catalog, who(catalog, "bob"), "Project", ids=[5])
        assert annotate.details.permissions.canAnnotate()
        assert not annotate.details.permissions.canEdit()

    def test_only_fetched_collections_are_loaded(self, catalog) -> None:
        """A plain query leaves collections unloaded; join fetch loads them."""
        (project,) = get_objects(catalog, who(catalog), "Project", ids=[3])
        assert not project.isDatasetLinksLoaded()
        query = (
            "select p from Project p left outer join fetch p.datasetLinks l "
            "left outer join fetch l.child where p.id in (:ids)"
        )
        found = catalog.find_all_by_query(query, params_with(ids=[3, 6]), who(catalog))
        assert [p.sizeOfDatasetLinks() for p in found] == [2, 1]
        assert found[0].copyDatasetLinks()[0].child.name.val == "ro-ds-1"
        assert not found[0].copyDatasetLinks()[0].child.isImageLinksLoaded()

    def test_a_row_reached_twice_is_one_object(self, catalog) -> None:
        """ro-both.tif, in two fetched datasets, is the same object twice."""
        query = (
            "select l from DatasetImageLink l join fetch l.child "
            "where l.parent.id in (:ids)"
        )
        links = catalog.find_all_by_query(query, params_with(ids=[3, 4]), who(catalog))
        both = [link.child for link in links if link.child.name.val == "ro-both.tif"]
        assert len(both) == 2 and both[0] is both[1]

    def test_unfetched_references_are_unloaded_proxies(self, catalog) -> None:
        """A link's parent not fetched is an unloaded object with its id."""
        (link,) = catalog.find_all_by_query(
            "select l from ProjectDatasetLink l where l.child.id = 8",
            None,
            who(catalog),
        )
        assert not link.parent.isLoaded() and link.parent.id.val == 6


class TestProjections:
    def test_container_columns(self, catalog) -> None:
        """Ids, names, owners and groups come back as rtypes."""
        query = (
            "select obj.id, obj.name, obj.details.owner.id, obj.details.group.id "
            "from Project obj where obj.id in (:ids) order by obj.id"
        )
        rows = catalog.projection(query, params_with(ids=[3, 4]), who(catalog))
        assert isinstance(rows[0][0], omero.RLong)
        assert isinstance(rows[0][1], omero.RString)
        assert cells(rows) == [[3, "bob-shared", 4, 4], [4, "alice-shared", 3, 4]]

    @pytest.mark.parametrize("limit", [1, 2, 3, 10])
    def test_link_pages_add_up_to_the_whole(self, catalog, limit) -> None:
        """Paging a parent-link projection gives the full list in order."""
        query = (
            "select l.parent.id, l.child.id, l.child.name, l.child.details.owner.id, "
            "l.child.details.group.id from DatasetImageLink l "
            "where l.parent.id in (:ids) order by l.parent.id, l.child.id"
        )
        caller = who(catalog, "alice")
        everything = cells(
            catalog.projection(query, params_with(ids=[1, 3, 4]), caller)
        )
        assert [row[:2] for row in everything] == [
            [1, 1],
            [1, 2],
            [3, 4],
            [3, 5],
            [3, 6],
            [4, 6],
            [4, 7],
        ]
        pages: list[list[Any]] = []
        offset = 0
        while True:
            params = params_with(ids=[1, 3, 4])
            params.page(offset, limit)
            page = cells(catalog.projection(query, params, caller))
            pages += page
            offset += limit
            if len(page) < limit:
                break
        assert pages == everything

    def test_wells_and_fields(self, catalog) -> None:
        """Well and WellSample projections by parent ids."""
        query = (
            "select w.plate.id, w.id, w.row, w.column from Well w "
            "where w.plate.id in (:ids) order by w.plate.id, w.id"
        )
        rows = cells(catalog.projection(query, params_with(ids=[2, 3]), who(catalog)))
        assert rows == [[2, 5, 0, 0], [2, 6, 0, 1], [3, 7, 0, 0]]
        query = (
            "select ws.well.id, ws.image.id, ws.image.name from WellSample ws "
            "where ws.well.id in (:ids) order by ws.well.id, ws.id"
        )
        rows = cells(catalog.projection(query, params_with(ids=[5]), who(catalog)))
        assert rows == [[5, 17, "rw-plate-A1-0.tif"], [5, 18, "rw-plate-A1-1.tif"]]

    def test_entities_come_back_as_robjects(self, catalog) -> None:
        """A selected entity is wrapped in an RObject."""
        rows = catalog.projection(
            "select p from Project p where p.id = 3", None, who(catalog)
        )
        assert rows[0][0].val.name.val == "bob-shared"

    def test_distinct_rows(self, catalog) -> None:
        """select distinct drops repeated rows."""
        query = (
            "select distinct l.child.details.owner.id from DatasetImageLink l "
            "order by l.child.details.owner.id"
        )
        assert cells(catalog.projection(query, None, who(catalog))) == [
            [3],
            [4],
            [5],
            [6],
        ]


class TestErrors:
    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("select obj from Project obj where", "unexpected the end"),
            ("select obj from Spaceship obj", "unknown entity 'Spaceship'"),
            (
                "select obj from Project obj where obj.colour = 1",
                "no property 'colour'",
            ),
            ("select obj from Project obj group by obj.id", "'group'"),
            ("select obj from Project obj, Dataset d", "more than one entity"),
            ("select avg(obj.id) from Project obj", r"avg\(\) is not supported"),
            ("select obj.datasetLinks.id from Project obj", "must be joined"),
        ],
    )
    def test_unsupported_queries_name_the_problem(self, catalog, query, message):
        """Anything not understood raises ApiUsageException saying what."""
        with pytest.raises(omero.ApiUsageException, match=message):
            catalog.projection(query, None, who(catalog))

    def test_missing_parameter(self, catalog) -> None:
        """A parameter the query names but the call lacks is an error."""
        with pytest.raises(omero.ApiUsageException, match=":ids"):
            catalog.find_all_by_query(
                "select p from Project p where p.id in (:ids)", None, who(catalog)
            )

    def test_comparing_a_number_with_text(self, catalog) -> None:
        """Ordering comparisons of incompatible values raise ValidationException."""
        with pytest.raises(omero.ValidationException):
            catalog.find_all_by_query(
                "select p from Project p where p.id > :x",
                params_with(x="three"),
                who(catalog),
            )

    def test_find_all_needs_one_entity(self, catalog) -> None:
        """findAllByQuery with columns asks for projection instead."""
        with pytest.raises(omero.ApiUsageException, match="one entity"):
            catalog.find_all_by_query("select p.id from Project p", None, who(catalog))

    def test_sorting_too_many_rows_is_refused(self, catalog, monkeypatch) -> None:
        """An ordering that needs more rows sorted than allowed is an error."""
        monkeypatch.setattr(run_module, "SORT_LIMIT", 3)
        with pytest.raises(omero.ApiUsageException, match="sorts at most 3"):
            catalog.find_all_by_query(
                "select i from Image i order by i.name", None, who(catalog)
            )
        found = catalog.find_all_by_query(
            "select i from Image i order by i.id", None, who(catalog)
        )
        assert len(found) == 20

    def test_find_by_query_stops_at_the_second_row(self, small_idr) -> None:
        """findByQuery over millions of rows fails fast instead of loading them."""
        with pytest.raises(omero.ApiUsageException, match="more than one"):
            small_idr.find_by_query(
                "select i from Image i", None, Caller(small_idr.user(ROOT_ID), -1)
            )

    def test_unknown_collection_count(self, catalog) -> None:
        """getCollectionCount of a non-collection raises ApiUsageException."""
        with pytest.raises(omero.ApiUsageException, match="cannot count"):
            catalog.collection_count("Project", "name", [1], None, who(catalog))


@pytest.fixture(scope="module")
def small_idr() -> Catalog:
    return idr_catalog(0.002)


class TestShortcutsAgreeWithTheGeneralPath:
    """Counting, streaming and early stops give what full evaluation gives.

    Adding ``obj.id > 0`` (always true) to a query turns off skipping rows
    by counting them and leaving the condition unchecked: every row is then
    looked at one by one.
    """

    @pytest.mark.parametrize(
        "query",
        [
            "select obj from Image obj",
            "select obj from Image obj order by lower(obj.name), obj.id",
            "select obj from Image obj order by obj.id",
            "select obj from Dataset obj order by obj.name",
            "select obj from Well obj order by obj.id",
        ],
    )
    @pytest.mark.parametrize("offset", [0, 7, 100])
    def test_pages_over_the_idr(self, small_idr, query, offset) -> None:
        """Entity pages deep into generated data match the slow path."""
        public = Caller(small_idr.user_by_name("public"), -1)
        slow = query.replace("obj order", "obj where obj.id > 0 order")
        if "where" not in slow:
            slow += " where obj.id > 0"
        params = ParametersI()
        params.page(offset, 50)
        fast_ids = [
            o.id.val for o in small_idr.find_all_by_query(query, params, public)
        ]
        slow_ids = [o.id.val for o in small_idr.find_all_by_query(slow, params, public)]
        assert fast_ids == slow_ids and fast_ids

    @pytest.mark.parametrize("offset", [0, 3, 400])
    def test_children_of_many_parents(self, small_idr, offset) -> None:
        """Link projections over several parents page like the slow path."""
        public = Caller(small_idr.user_by_name("public"), -1)
        biggest = max(small_idr.segments("Dataset"), key=lambda s: len(s.rows))
        datasets = [d.id for d in biggest.rows[:3]]
        fast = (
            "select l.parent.id, l.child.id from DatasetImageLink l "
            "where l.parent.id in (:ids) order by l.parent.id, l.child.id"
        )
        slow = fast.replace("where", "where l.id > 0 and")
        params = params_with(ids=datasets)
        params.page(offset, 100)
        rows = cells(small_idr.projection(fast, params, public))
        assert rows == cells(small_idr.projection(slow, params, public))
        assert rows

    @pytest.mark.parametrize("user", ["alice", "bob", "dave", "root"])
    def test_pages_where_a_private_group_hides_rows(self, catalog, user) -> None:
        """Paged results equal slices of the whole list for every viewer."""
        caller = who(catalog, user)
        query = "select obj from Image obj order by obj.id"
        everything = [o.id.val for o in catalog.find_all_by_query(query, None, caller)]
        for offset in range(0, len(everything) + 2, 3):
            params = ParametersI()
            params.page(offset, 3)
            page = catalog.find_all_by_query(query, params, caller)
            assert [o.id.val for o in page] == everything[offset : offset + 3]

    @pytest.mark.parametrize(
        ("kind", "orphan"),
        [("Image", "orphan.tif"), ("Dataset", "orphan-ds"), ("Plate", "orphan-plate")],
    )
    def test_orphans_among_generated_rows(self, kind, orphan) -> None:
        """Segments settle 'not exists' at once and agree with row-by-row."""
        catalog = idr_catalog(0.002)
        group = catalog.group_by_name("idr-cell")
        dataset = next(
            d.id
            for s in catalog.segments("Dataset")
            for d in s.rows
            if d.group_id == group.id
        )
        catalog.add_image("orphan.tif", owner="submitter2", group=group)
        catalog.add_image(
            "linked.tif", owner="submitter2", group=group, dataset=dataset
        )
        catalog.add_dataset("orphan-ds", owner="submitter2", group=group)
        catalog.add_plate("orphan-plate", owner="submitter2", group=group)
        public = Caller(catalog.user_by_name("public"), -1)
        query, params = gateway_query(kind, opts={"orphaned": True})
        fast = names(catalog.find_all_by_query(query, params, public))
        # a subquery with one more condition is checked row by row
        slow_query = query.replace("= obj.id", "= obj.id and obj.id > 0")
        assert slow_query != query
        slow = names(catalog.find_all_by_query(slow_query, params, public))
        assert fast == slow == [orphan]

    def test_counts(self, small_idr) -> None:
        """count(distinct obj) by counting equals counting row by row."""
        root = Caller(small_idr.user(ROOT_ID), -1)
        fast = small_idr.projection(
            "select count(distinct obj) from Image obj", None, root
        )
        slow = small_idr.projection(
            "select count(distinct obj) from Image obj where obj.id > 0", None, root
        )
        assert cells(fast) == cells(slow) == [[small_idr.visible_count("Image", root)]]
