"""Conditional requests over HTTP: an entity's ETag is its version; If-None-Match
spares a download, If-Match makes a change or a delete conditional, atomically."""

import asyncio
from itertools import zip_longest
from types import TracebackType
from typing import Any

import pytest
from dependency_injector import providers
from httpx import AsyncClient, Response

from application.ports import UnitOfWork, UnitOfWorkFactory
from entrypoints.container import Container
from tests.api.helpers import Json, assert_problem, create_project, create_task

VERSION_MISMATCH = "urn:taskhub:problem:version-mismatch"
KINDS = ["tasks", "projects"]
MISSING = 999
RACERS = 20
ROUNDS = 3

# If-Match values that must not match an entity at version 2.
NOT_VERSION_2 = [
    '"1"',
    '"3"',
    'W/"2"',  # weak: If-Match compares strongly
    '"1", W/"2"',
    "abc",
    '"x"',
    '""',
    "2",  # unquoted
]


def tag(version: int) -> str:
    return f'"{version}"'


def a_change(kind: str, n: int = 0) -> Json:
    """A PATCH body that changes the entity (each `n` to another value)."""
    return {"title": f"Title {n}"} if kind == "tasks" else {"name": f"Name {n}"}


async def create(client: AsyncClient, kind: str) -> Json:
    if kind == "tasks":
        return await create_task(client, "Draft")
    return await create_project(client, "Roadmap")


async def at_version_2(client: AsyncClient, kind: str) -> tuple[str, Json]:
    """An entity changed once, its path, and its body as GET answers it."""
    path = f"/{kind}/{(await create(client, kind))['id']}"
    changed = await client.patch(path, json=a_change(kind, 2))
    assert changed.json()["version"] == 2, changed.text
    return path, changed.json()


def entity(response: Response, status: int = 200) -> Json:
    """The entity a response carries, after checking the status and that the
    ETag is the entity's version."""
    assert response.status_code == status, response.text
    body: Json = response.json()
    assert response.headers["ETag"] == tag(body["version"])
    return body


def assert_version_mismatch(response: Response, version: int) -> None:
    body = assert_problem(response, 412)
    assert body["type"] == VERSION_MISMATCH
    assert f"at version {version}," in body["detail"]


async def assert_unchanged(client: AsyncClient, path: str, before: Json) -> None:
    assert entity(await client.get(path)) == before


# --- ETags and If-None-Match --------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_every_answer_with_one_entity_carries_its_version_as_a_strong_etag(
    client: AsyncClient, kind: str
) -> None:
    created = await client.post(f"/{kind}", json=a_change(kind, 1))
    body = entity(created, 201)
    assert created.headers["ETag"] == '"1"'
    path = created.headers["Location"]
    assert entity(await client.get(path)) == body

    changed = entity(await client.patch(path, json=a_change(kind, 2)))
    assert changed["version"] == 2
    unchanged = entity(await client.patch(path, json=a_change(kind, 2)))
    assert unchanged == changed
    assert (await client.get(path)).headers["ETag"] == '"2"'
    assert "ETag" not in (await client.get(f"/{kind}")).headers


@pytest.mark.parametrize("kind", KINDS)
async def test_if_none_match_naming_the_current_version_answers_304_without_a_body(
    client: AsyncClient, kind: str
) -> None:
    path, current = await at_version_2(client, kind)

    for header in ['"2"', 'W/"2"', "*", '"1", "2"', 'W/"1" , W/"2"', '"2", "9"']:
        response = await client.get(path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.headers["ETag"] == '"2"', header
        assert response.content == b"", header
    for header in ['"1"', 'W/"1"', '"3"', '"1", "3"', "2", "abc"]:
        response = await client.get(path, headers={"If-None-Match": header})
        assert entity(response) == current, header
    missing = await client.get(f"/{kind}/{MISSING}", headers={"If-None-Match": "*"})
    assert_problem(missing, 404)


# --- If-Match -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_patch_if_matching_the_current_version_applies(
    client: AsyncClient, kind: str
) -> None:
    path = f"/{kind}/{(await create(client, kind))['id']}"
    headers = ['"{v}"', "*", '"7", "{v}"', 'W/"{v}", "{v}"', ' "{v}" ,"8" ']

    for n, header in enumerate(headers, start=2):
        if_match = header.format(v=n - 1)
        response = await client.patch(
            path, json=a_change(kind, n), headers={"If-Match": if_match}
        )
        assert entity(response)["version"] == n, if_match
    assert entity(await client.get(path)) == response.json()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_delete_if_matching_the_current_version_deletes(
    client: AsyncClient, kind: str
) -> None:
    for n, header in enumerate(['"1"', "*", '"7", "1"', 'W/"1", "1"']):
        created = await client.post(f"/{kind}", json=a_change(kind, n))
        path = created.headers["Location"]

        response = await client.delete(path, headers={"If-Match": header})

        assert response.status_code == 204, header
        assert_problem(await client.get(path), 404)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_patch_or_delete_if_matching_another_version_is_412_and_does_nothing(
    client: AsyncClient, kind: str
) -> None:
    path, current = await at_version_2(client, kind)

    for header in NOT_VERSION_2:
        headers = {"If-Match": header}
        for body in (a_change(kind, 3), a_change(kind, 2)):  # a change, a no-op
            assert_version_mismatch(
                await client.patch(path, json=body, headers=headers), 2
            )
        assert_version_mismatch(await client.delete(path, headers=headers), 2)
    await assert_unchanged(client, path, current)


async def test_if_match_with_leading_zeros_is_another_tag(client: AsyncClient) -> None:
    path, current = await at_version_2(client, "tasks")

    for header in ['"02"', '"002"']:
        headers = {"If-Match": header}
        assert_version_mismatch(
            await client.patch(path, json=a_change("tasks", 3), headers=headers), 2
        )
        assert_version_mismatch(await client.delete(path, headers=headers), 2)
    await assert_unchanged(client, path, current)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_conditional_patch_or_delete_of_a_missing_entity_is_404(
    client: AsyncClient, kind: str
) -> None:
    await create(client, kind)
    path = f"/{kind}/{MISSING}"

    for header in ['"1"', "*", 'W/"1"', "abc"]:
        headers = {"If-Match": header}
        assert_problem(
            await client.patch(path, json=a_change(kind), headers=headers), 404
        )
        assert_problem(await client.delete(path, headers=headers), 404)


async def test_a_project_with_tasks_is_a_conflict_to_delete_if_matching_else_412(
    client: AsyncClient,
) -> None:
    project = await create_project(client)
    task = await create_task(client, project_id=project["id"])
    path = f"/projects/{project['id']}"

    for header in ['"1"', "*", '"2", "1"']:
        assert_problem(await client.delete(path, headers={"If-Match": header}), 409)
    assert_version_mismatch(await client.delete(path, headers={"If-Match": '"2"'}), 1)

    await assert_unchanged(client, path, project)
    await assert_unchanged(client, f"/tasks/{task['id']}", task)
    assert (await client.delete(f"/tasks/{task['id']}")).status_code == 204
    assert (await client.delete(path, headers={"If-Match": '"1"'})).status_code == 204


# --- races --------------------------------------------------------------------


class Overlap:
    """The most use cases that were at once between reading a row for a write
    and the end of their unit of work. Above one, some racer read the row while
    another held it; on a database, that read waited for the other's lock."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def begin(self) -> None:
        self.now += 1
        self.most = max(self.most, self.now)


class _WatchedRepository:
    def __init__(self, inner: Any, overlap: Overlap) -> None:
        self._inner = inner
        self._overlap = overlap
        self.reading = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, entity_id: int, *, for_update: bool = False) -> Any:
        if for_update and not self.reading:
            self.reading = True
            self._overlap.begin()
        return await self._inner.get(entity_id, for_update=for_update)


class _WatchedUnitOfWork:
    def __init__(
        self,
        factory: UnitOfWorkFactory,
        overlap: Overlap,
        owner_id: int,
        read_only: bool = False,
    ) -> None:
        self._inner = factory(owner_id=owner_id, read_only=read_only)
        self._overlap = overlap

    async def __aenter__(self) -> "_WatchedUnitOfWork":
        await self._inner.__aenter__()
        self.tasks = _WatchedRepository(self._inner.tasks, self._overlap)
        self.projects = _WatchedRepository(self._inner.projects, self._overlap)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._inner.__aexit__(exc_type, exc, tb)
        finally:
            self._overlap.now -= self.tasks.reading + self.projects.reading

    async def commit(self) -> None:
        await self._inner.commit()


def watch_overlap(container: Container) -> Overlap:
    """Swap the units of work for watched ones of the same backend."""
    overlap = Overlap()
    real: providers.Provider[UnitOfWork] = container.unit_of_work.providers[
        container.config.backend()
    ]
    container.unit_of_work.override(
        providers.Factory(_WatchedUnitOfWork, factory=real.provider, overlap=overlap)
    )
    return overlap


def assert_raced(database_url: str, overlap: Overlap) -> None:
    # Only PostgreSQL runs these requests' transactions side by side. The memory
    # adapter serializes whole units of work, and SQLite's write lock (which
    # every transaction, authentication's too, takes at BEGIN IMMEDIATE) mostly
    # queues the racers one behind the other: there the test checks the outcome
    # of an arbitrary order, not of a race.
    assert overlap.most >= 1, "the units of work were not watched"
    if database_url.startswith("postgresql"):
        assert overlap.most > 1, "the racers did not overlap"


@pytest.mark.parametrize("kind", KINDS)
async def test_of_racing_patches_then_deletes_at_the_current_tag_exactly_one_wins(
    client: AsyncClient, container: Container, database_url: str, kind: str
) -> None:
    path = f"/{kind}/{(await create(client, kind))['id']}"

    # A few rounds: whether a broken check lets two racers through is a matter
    # of how their reads and commits interleave, so one round may miss it.
    for version in range(1, ROUNDS + 1):
        overlap = watch_overlap(container)
        patches = await asyncio.gather(
            *(
                client.patch(
                    path,
                    json=a_change(kind, version * RACERS + n),
                    headers={"If-Match": tag(version)},
                )
                for n in range(RACERS)
            )
        )

        statuses = [r.status_code for r in patches]
        assert sorted(statuses) == [200] + [412] * (RACERS - 1), statuses
        winner = entity(patches[statuses.index(200)])
        assert winner["version"] == version + 1
        for loser in patches:
            if loser.status_code == 412:
                assert_version_mismatch(loser, version + 1)
        assert entity(await client.get(path)) == winner
        assert_raced(database_url, overlap)

    overlap = watch_overlap(container)
    deletes = await asyncio.gather(
        *(
            client.delete(path, headers={"If-Match": tag(ROUNDS + 1)})
            for _ in range(RACERS)
        )
    )

    statuses = sorted(r.status_code for r in deletes)
    assert statuses[0] == 204, statuses
    assert set(statuses[1:]) <= {404, 412}, statuses
    assert_problem(await client.get(path), 404)
    assert_raced(database_url, overlap)


async def test_concurrent_patches_of_different_fields_without_if_match_lose_nothing(
    client: AsyncClient, container: Container, database_url: str
) -> None:
    task = await create_task(client, "Draft")
    path = f"/tasks/{task['id']}"
    sent: dict[str, list[Any]] = {
        "title": [f"Title {n}" for n in range(4)],
        "description": [f"Notes {n}" for n in range(4)],
        "priority": ["low", "high", "urgent"],
        "due_date": [f"2026-0{n + 1}-15" for n in range(4)],
        "done": [True] * 4,  # only the first of these to land changes anything
    }
    # Fields interleaved: title, description, priority, due_date, done, title...
    patches = [
        {field: value}
        for row in zip_longest(*([(f, v) for v in vs] for f, vs in sent.items()))
        for field, value in filter(None, row)
    ]
    overlap = watch_overlap(container)

    responses = await asyncio.gather(*(client.patch(path, json=p) for p in patches))

    results = [entity(r) for r in responses]
    final = entity(await client.get(path))
    for field, values in sent.items():
        landed = [
            (result["version"], result[field])
            for patch, result in zip(patches, results, strict=True)
            if field in patch
        ]
        assert [value for _, value in landed] == values, field
        # The field's last write is the one that got the highest version.
        assert final[field] == max(landed)[1], field
    changes = len(patches) - len(sent["done"]) + 1
    assert final["version"] == 1 + changes
    # Every change got a version of its own, and the no-ops one of those.
    versions = [result["version"] for result in results]
    assert set(versions) == set(range(2, 2 + changes))
    changers = [v for p, v in zip(patches, versions, strict=True) if "done" not in p]
    assert len(set(changers)) == len(changers)
    assert all(r == final for r in results if r["version"] == final["version"])
    assert_raced(database_url, overlap)
