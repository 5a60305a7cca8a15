"""The emulator's catalog: users, groups, fixture data and the IDR catalog."""

from __future__ import annotations

import time

import omero
import omero.clients  # registers ParametersI
import omero.gateway
import pytest
from omero.sys import ParametersI

from aiomero.testing.catalog import (
    ALL_ADMIN_PRIVILEGES,
    GUEST_GROUP_ID,
    GUEST_ID,
    PRIVATE,
    READ_ONLY,
    ROOT_ID,
    SYSTEM_GROUP_ID,
    USER_GROUP_ID,
    Caller,
    Catalog,
    default_catalog,
)
from aiomero.testing.idr import idr_catalog, read_studies


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return default_catalog()


def as_root(catalog: Catalog) -> Caller:
    return Caller(catalog.user(ROOT_ID), -1)


class TestPeople:
    def test_every_catalog_starts_with_the_server_builtins(self) -> None:
        """A new catalog has root, guest and the system, user and guest groups."""
        catalog = Catalog()
        root, guest = catalog.user(ROOT_ID), catalog.user(GUEST_ID)
        assert (root.name, guest.name) == ("root", "guest")
        assert root.password == "omero"
        assert root.is_admin and root.privileges == frozenset(ALL_ADMIN_PRIVILEGES)
        assert root.group_ids == [SYSTEM_GROUP_ID, USER_GROUP_ID]
        assert guest.group_ids == [GUEST_GROUP_ID] and not guest.is_admin
        names = [catalog.group(i).name for i in (0, 1, 2)]
        assert names == ["system", "user", "guest"]

    def test_password_is_not_in_the_repr(self, catalog: Catalog) -> None:
        """A user's repr never shows its password."""
        alice = catalog.user_by_name("alice")
        assert alice is not None
        assert "alice-pw" not in repr(alice)

    def test_add_user_puts_the_default_group_first(self) -> None:
        """The first group given is the default; active users join 'user'."""
        catalog = Catalog()
        lab = catalog.add_group("lab", READ_ONLY)
        other = catalog.add_group("other", PRIVATE)
        user = catalog.add_user("u", "pw", groups=[other, lab], leader_of=["lab"])
        assert user.default_group_id == other.id
        assert user.group_ids == [other.id, lab.id, USER_GROUP_ID]
        assert user.leader_of == {lab.id}
        assert not user.is_admin and user.privileges == frozenset()

    def test_leading_a_group_makes_the_user_a_member(self) -> None:
        """leader_of alone is enough for membership."""
        catalog = Catalog()
        lab = catalog.add_group("lab")
        user = catalog.add_user("u", "pw", leader_of=[lab])
        assert lab.id in user.group_ids

    def test_inactive_user_is_left_out_of_the_user_group(self, catalog) -> None:
        """An inactive user is not in 'user', which is what 'active' means."""
        erin = catalog.user_by_name("erin")
        assert not erin.active and USER_GROUP_ID not in erin.group_ids
        wrapper = omero.gateway.ExperimenterWrapper(None, catalog.experimenter(erin.id))
        assert not wrapper.isActive()

    def test_restricted_admin_has_only_its_privileges(self, catalog) -> None:
        """An admin given privileges holds exactly those."""
        operator = catalog.user_by_name("operator")
        assert operator.is_admin
        assert operator.privileges == {"ModifyUser", "ReadSession", "Sudo"}

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"groups": ["nowhere"]}, "unknown group"),
            ({"admin": True, "privileges": ["Fly"]}, "unknown privileges"),
            ({"active": False}, "needs a group"),
        ],
    )
    def test_add_user_rejects_bad_arguments(self, kwargs, message) -> None:
        """Unknown groups or privileges, or no group at all, raise ValueError."""
        with pytest.raises(ValueError, match=message):
            Catalog().add_user("u", "pw", **kwargs)

    def test_names_are_unique(self) -> None:
        """A second user or group of the same name raises ValueError."""
        catalog = Catalog()
        with pytest.raises(ValueError, match="exists"):
            catalog.add_user("root", "x")
        with pytest.raises(ValueError, match="exists"):
            catalog.add_group("system")

    def test_experimenter_lists_memberships_default_group_first(self, catalog):
        """experimenter() loads the group map: default first, leaders marked."""
        bob = catalog.user_by_name("bob")
        obj = catalog.experimenter(bob.id)
        assert obj.isLoaded() and obj.omeName.val == "bob"
        maps = obj.copyGroupExperimenterMap()
        assert [m.parent.id.val for m in maps] == bob.group_ids
        assert [m.owner.val for m in maps] == [
            g in bob.leader_of for g in bob.group_ids
        ]
        assert maps[0].parent.details.permissions.isGroupRead()
        assert all(m.child is obj for m in maps)

    def test_experimenter_wrapper_reads_admin_and_active(self, catalog) -> None:
        """BlitzGateway's ExperimenterWrapper sees root as an active admin."""
        wrapper = omero.gateway.ExperimenterWrapper(None, catalog.experimenter(ROOT_ID))
        assert wrapper.isAdmin() and wrapper.isActive()
        assert wrapper.getFullName() == "root root"

    def test_experimenter_group_carries_permissions_and_members(self, catalog):
        """experimenter_group() has its permissions and loaded members."""
        group = catalog.group_by_name("private-lab")
        obj = catalog.experimenter_group(group.id)
        assert str(obj.details.permissions) == PRIVATE
        members = {m.child.omeName.val for m in obj.copyGroupExperimenterMap()}
        assert members == {"alice", "bob", "dave"}
        leaders = {
            m.child.omeName.val for m in obj.copyGroupExperimenterMap() if m.owner.val
        }
        assert leaders == {"alice"}

    def test_unknown_ids_raise_key_error(self, catalog) -> None:
        """user() and group() raise KeyError for unknown ids."""
        with pytest.raises(KeyError):
            catalog.user(999)
        with pytest.raises(KeyError):
            catalog.experimenter_group(999)


class TestFixtureData:
    def test_default_catalog_is_deterministic(self) -> None:
        """Two default catalogs give every name the same id."""
        first, second = default_catalog(), default_catalog()
        for kind in ("Project", "Dataset", "Image", "Screen", "Plate", "Well"):
            a = [
                (r.id, getattr(r, "name", None))
                for s in first.segments(kind)
                for r in s.rows
            ]
            b = [
                (r.id, getattr(r, "name", None))
                for s in second.segments(kind)
                for r in s.rows
            ]
            assert a == b and a

    def test_ids_are_unique_per_kind_and_start_at_one(self, catalog) -> None:
        """Each kind numbers its rows 1, 2, 3..."""
        for kind in ("Project", "Dataset", "Image", "DatasetImageLink", "WellSample"):
            ids = [row.id for s in catalog.segments(kind) for row in s.rows]
            assert ids == list(range(1, len(ids) + 1))

    def test_image_in_two_datasets_has_two_links(self, catalog) -> None:
        """An image added with two datasets is linked to both."""
        found = catalog.find_all_by_query(
            "select obj from Image obj where obj.name = 'ro-both.tif'",
            None,
            as_root(catalog),
        )
        (image,) = found
        links = catalog.referrers("DatasetImageLink", "child", image.id.val)
        parents = [link.parent_id for s in links for link in s.rows]
        names = {catalog.get("Dataset", p).name for p in parents}
        assert names == {"ro-ds-1", "ro-ds-2"}

    def test_image_in_a_well_becomes_a_field(self) -> None:
        """add_image(well=...) adds a WellSample pointing at well and image."""
        catalog = Catalog()
        lab = catalog.add_group("lab")
        catalog.add_user("u", "pw", groups=[lab])
        plate = catalog.add_plate("p", owner="u", group=lab)
        well = catalog.add_well(plate=plate, row=1, column=2)
        image = catalog.add_image("i", owner="u", group=lab, well=well)
        (segment,) = catalog.referrers("WellSample", "well", well)
        (sample,) = segment.rows
        assert (sample.well_id, sample.image_id) == (well, image)
        assert (catalog.get("Well", well).row, catalog.get("Well", well).column) == (
            1,
            2,
        )

    def test_owner_must_belong_to_the_group(self, catalog) -> None:
        """Adding data for a user outside the group raises ValueError."""
        catalog = default_catalog()
        with pytest.raises(ValueError, match="not a member"):
            catalog.add_project("p", owner="carol", group="private-lab")

    def test_links_stay_within_one_group(self) -> None:
        """A child in another group than its parent raises ValueError."""
        catalog = default_catalog()
        project = catalog.add_project("p", owner="bob", group="read-only-lab")
        with pytest.raises(ValueError, match="another group"):
            catalog.add_dataset("d", owner="bob", group="private-lab", project=project)

    def test_linking_twice_to_one_parent_is_refused(self) -> None:
        """The same parent twice in one call raises ValueError."""
        catalog = default_catalog()
        dataset = catalog.add_dataset("d", owner="bob", group="read-only-lab")
        with pytest.raises(ValueError, match="twice"):
            catalog.add_image(
                "i", owner="bob", group="read-only-lab", dataset=[dataset] * 2
            )

    def test_unknown_parent_is_refused(self, catalog) -> None:
        """A parent id that does not exist raises ValueError."""
        with pytest.raises(ValueError, match="unknown Project"):
            default_catalog().add_dataset(
                "d", owner="bob", group="read-only-lab", project=999
            )


@pytest.fixture(scope="module")
def idr() -> Catalog:
    return idr_catalog(1.0)


class TestIdrCatalog:
    def test_data_file_credits_the_idr(self) -> None:
        """The packaged study table names its source and licence."""
        from importlib import resources

        text = resources.files("aiomero.testing").joinpath("data/idr-studies.tsv")
        header = text.read_text().splitlines()[0]
        assert "Image Data Resource" in header and "CC BY 4.0" in header

    def test_full_scale_builds_fast_with_every_image(self, idr) -> None:
        """idr_catalog(1.0) builds in well under seconds and holds ~14M images."""
        started = time.perf_counter()
        idr_catalog(1.0)
        assert time.perf_counter() - started < 3.0
        expected = sum(s.images for s in read_studies() if s.sets)
        assert idr.visible_count("Image", as_root(idr)) == expected > 14_000_000

    def test_counts_follow_the_study_table(self, idr) -> None:
        """One screen or project per row, with the table's plates and datasets."""
        studies = read_studies()
        root = as_root(idr)
        screens = [s for s in studies if s.is_screen]
        assert idr.visible_count("Screen", root) == len(screens)
        assert idr.visible_count("Project", root) == len(studies) - len(screens)
        assert idr.visible_count("Plate", root) == sum(s.sets for s in screens)

    def test_small_scale_keeps_one_of_each(self) -> None:
        """A tiny scale still gives every study a plate or dataset and images."""
        small = idr_catalog(1e-9)
        root = as_root(small)
        studies = read_studies()
        assert small.visible_count("Plate", root) + small.visible_count(
            "Dataset", root
        ) == len(studies)
        assert small.visible_count("Image", root) == len(studies)

    def test_rows_agree_between_lookups(self) -> None:
        """get(), segments() and referrers() describe the same rows."""
        small = idr_catalog(0.01)
        for kind in ("Plate", "Well", "Image", "WellSample", "DatasetImageLink"):
            for segment in small.segments(kind)[:5]:
                for row in (segment.rows[0], segment.rows[len(segment.rows) - 1]):
                    again = small.get(kind, row.id)
                    assert vars_of(again) == vars_of(row)
        for segment in small.segments("Well")[:20]:
            for well in segment.rows[:50]:
                (wells,) = small.referrers("Well", "plate", well.plate_id)
                assert well.id in [w.id for w in wells.rows]
        for segment in small.segments("DatasetImageLink")[:20]:
            for link in segment.rows[:50]:
                (children,) = small.referrers(
                    "DatasetImageLink", "parent", link.parent_id
                )
                assert link.id in [c.id for c in children.rows]

    def test_every_image_has_exactly_one_parent(self) -> None:
        """Each image is in one dataset or one well, never both, as its
        segment says."""
        small = idr_catalog(0.002)
        for segment in small.segments("Image"):
            for image in segment.rows:
                links = small.referrers("DatasetImageLink", "child", image.id)
                samples = small.referrers("WellSample", "image", image.id)
                assert len(links) + len(samples) == 1
                assert segment.referenced == {
                    ("DatasetImageLink", "child"): bool(links),
                    ("WellSample", "image"): bool(samples),
                }

    def test_names_sort_like_ids(self, idr) -> None:
        """Within a kind, lower-cased names increase with ids."""
        for kind in ("Screen", "Project", "Plate", "Dataset", "Image"):
            assert idr.names_follow_ids(kind)
            firsts = [s.rows[0] for s in idr.segments(kind)]
            names = [r.name.lower() for r in firsts]
            assert names == sorted(names)

    def test_everything_is_readable_by_public(self, idr) -> None:
        """The 'public' user sees every image, in read-only groups."""
        public = Caller(idr.user_by_name("public"), -1)
        assert idr.visible_count("Image", public) == idr.visible_count(
            "Image", as_root(idr)
        )
        assert {g.permissions for g in idr.groups[3:]} == {READ_ONLY}

    def test_deep_page_costs_no_more_than_the_first(self, idr) -> None:
        """Paging 500 images deep into 14 million answers within a second."""
        public = Caller(idr.user_by_name("public"), -1)
        query = "select obj from Image obj order by lower(obj.name), obj.id"
        params = ParametersI()
        params.page(13_000_000, 500)
        started = time.perf_counter()
        page = idr.find_all_by_query(query, params, public)
        assert time.perf_counter() - started < 1.0
        ids = [obj.id.val for obj in page]
        assert ids == list(range(13_000_001, 13_000_501))


def vars_of(row):
    return {name: getattr(row, name) for name in dir(row) if not name.startswith("_")}
