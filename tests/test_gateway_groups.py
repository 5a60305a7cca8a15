"""Group contexts: per call, per task, per session, and every group at once."""

from __future__ import annotations

import asyncio

import pytest

from aiomero import PermissionDeniedError
from aiomero.testing import Emulator
from gateway_helpers import gateway_for

# Group ids of the default catalog.
PRIVATE, READ_ONLY, ANNOTATE = 3, 4, 5


async def project_groups(gateway, **options) -> set[int]:
    """The groups of the projects a listing returns."""
    return {p.group_id for p in await gateway.listProjects(**options)}


class TestPerCall:
    async def test_group_argument_chooses_the_group_by_name_or_id(
        self, async_gateway
    ) -> None:
        """group= runs one call in that group; the next is back to the default."""
        bob = await async_gateway("bob")
        assert await project_groups(bob, group="private-lab") == {PRIVATE}
        assert await project_groups(bob, group=ANNOTATE) == {ANNOTATE}
        assert await project_groups(bob) == {READ_ONLY}

    async def test_minus_one_spans_every_group_of_the_user(self, async_gateway):
        """group=-1 returns objects of all the user's groups together."""
        bob = await async_gateway("bob")
        projects = await bob.getObjects("Project", group=-1)
        assert {p.group_id for p in projects} == {PRIVATE, READ_ONLY, ANNOTATE}
        assert {"bob-private", "bob-shared", "carol-annotate"} <= {
            p.name for p in projects
        }

    async def test_an_object_found_everywhere_is_read_in_its_own_group(
        self, async_gateway
    ) -> None:
        """Found with -1, an object is fetched again in the group it lives in."""
        bob = await async_gateway("bob")
        [found] = [
            p
            for p in await bob.getObjects("Project", group=-1)
            if p.group_id == PRIVATE
        ]
        assert await bob.getObject("Project", found.id) is None
        again = await bob.getObject("Project", found.id, group=found.group_id)
        assert (again.id, again.name) == (found.id, "bob-private")

    async def test_a_group_the_user_is_not_in_is_refused_by_name(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """A foreign group raises PermissionDeniedError naming it, unqueried."""
        alice = await async_gateway("alice")
        before = omero_emulator.counters.calls["findAllByQuery"]
        with pytest.raises(PermissionDeniedError, match="'annotate-lab'"):
            await alice.listProjects(group="annotate-lab")
        with pytest.raises(PermissionDeniedError, match="5"):
            await alice.listProjects(group=ANNOTATE)
        with pytest.raises(PermissionDeniedError, match="'no-such-lab'"):
            await alice.listProjects(group="no-such-lab")
        assert omero_emulator.counters.calls["findAllByQuery"] == before

    async def test_an_administrator_may_use_any_group(self, async_gateway) -> None:
        """root, a member of none of the labs, still reads each lab's data."""
        root = await async_gateway("root")
        assert await project_groups(root, group="annotate-lab") == {ANNOTATE}

    async def test_a_bad_group_value_is_refused_before_any_call(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """A group that is neither an id nor a name fails at once, by field."""
        bob = await async_gateway("bob")
        before = omero_emulator.counters.calls["findAllByQuery"]
        with pytest.raises(TypeError, match="group"):
            await bob.listProjects(group=1.5)
        with pytest.raises(ValueError, match="group"):
            await bob.listProjects(group=-2)
        with pytest.raises(TypeError, match="group"):
            async with bob.use_group(True):
                pass
        assert omero_emulator.counters.calls["findAllByQuery"] == before


class TestPerTask:
    async def test_use_group_applies_to_the_block_only(self, async_gateway) -> None:
        """Inside use_group(g) calls run in g; after it, in the default."""
        bob = await async_gateway("bob")
        async with bob.use_group("private-lab"):
            assert await project_groups(bob) == {PRIVATE}
            group = await bob.getGroupFromContext()
            assert group.name == "private-lab"
            async with bob.use_group(-1):
                assert len(await project_groups(bob)) == 3
            assert await project_groups(bob) == {PRIVATE}
        assert await project_groups(bob) == {READ_ONLY}

    async def test_group_argument_wins_over_use_group(self, async_gateway) -> None:
        """An explicit group= beats the task's group for that call."""
        bob = await async_gateway("bob")
        async with bob.use_group("private-lab"):
            assert await project_groups(bob, group=ANNOTATE) == {ANNOTATE}

    async def test_use_group_refuses_a_foreign_group(self, async_gateway) -> None:
        """Calls in a use_group block of a foreign group raise, naming it."""
        alice = await async_gateway("alice")
        async with alice.use_group("annotate-lab"):
            with pytest.raises(PermissionDeniedError, match="'annotate-lab'"):
                await alice.listProjects()

    async def test_tasks_sharing_a_gateway_never_see_each_others_group(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """Interleaved tasks in different groups each get only their group."""
        bob = await async_gateway("bob")
        omero_emulator.faults.set_latency((0.0, 0.01))
        seen: dict[object, set[int]] = {}

        async def lister(group: int | str | None, rounds: int) -> None:
            found: set[int] = set()
            if group is None:
                for _ in range(rounds):
                    found |= await project_groups(bob)
                    await asyncio.sleep(0)
            else:
                async with bob.use_group(group):
                    for _ in range(rounds):
                        found |= await project_groups(bob)
                        await asyncio.sleep(0)
            seen[group] = found

        await asyncio.gather(
            lister("private-lab", 8), lister(ANNOTATE, 8), lister(None, 8)
        )
        assert seen == {
            "private-lab": {PRIVATE},
            ANNOTATE: {ANNOTATE},
            None: {READ_ONLY},
        }


class TestSessionGroup:
    async def test_set_group_for_session_moves_the_session(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """setGroupForSession switches the server's group and the default."""
        bob = await async_gateway("bob")
        assert await bob.setGroupForSession("private-lab") == PRIVATE
        assert await project_groups(bob) == {PRIVATE}
        assert (await bob.getGroupFromContext()).name == "private-lab"
        [key] = omero_emulator.session_keys("bob")
        assert omero_emulator.sessions.get(key).group_id == PRIVATE
        assert (await bob.session_info()).group_id == PRIVATE

    async def test_set_group_for_session_refuses_a_foreign_group(
        self, async_gateway
    ) -> None:
        """A group the user is not in raises PermissionDeniedError naming it."""
        alice = await async_gateway("alice")
        with pytest.raises(PermissionDeniedError, match="'annotate-lab'"):
            await alice.setGroupForSession("annotate-lab")
        assert (await alice.getGroupFromContext()).name == "private-lab"

    async def test_a_session_cannot_be_in_every_group(self, async_gateway) -> None:
        """setGroupForSession(-1) is a ValueError: -1 is for calls only."""
        bob = await async_gateway("bob")
        with pytest.raises(ValueError, match="-1"):
            await bob.setGroupForSession(-1)

    async def test_group_option_logs_in_to_that_group(
        self, omero_emulator: Emulator
    ) -> None:
        """AsyncGateway(group=...) starts the session in that group."""
        async with gateway_for(omero_emulator, "bob", group="annotate-lab") as bob:
            assert (await bob.getGroupFromContext()).name == "annotate-lab"
            assert await project_groups(bob) == {ANNOTATE}

    async def test_a_foreign_group_at_connect_is_refused_and_leaves_no_session(
        self, omero_emulator: Emulator
    ) -> None:
        """connect() with a group the user is not in fails, naming the group,
        and the session it made is ended."""
        alice = gateway_for(omero_emulator, "alice", group="annotate-lab")
        with pytest.raises(PermissionDeniedError, match="'annotate-lab'"):
            await alice.connect()
        assert not alice.isConnected()
        assert omero_emulator.session_keys("alice") == []
