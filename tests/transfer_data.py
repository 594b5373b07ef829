"""A data set for export and import tests: what a round trip must keep exactly."""

from datetime import date

from application.services import CreateTask
from domain.projects import ProjectChanges
from domain.tasks import TaskChanges
from domain.values import Priority
from entrypoints.container import Container

# Text a file format can get wrong: quotes, commas, line breaks, emoji,
# right-to-left script, a backslash and the CSV null marker as plain text.
AWKWARD = 'Say "hi", then\r\nleave 💡 — שלום עולם, \\N and \\'


async def populate(container: Container) -> dict[str, int]:
    """Two owners, alice and bob, with projects (one archived) and tasks (done
    and open, with and without a project, with gaps in the ids); their ids."""
    identity = container.identity_service()
    projects, tasks = container.project_service(), container.task_service()
    alice = await identity.ensure_user("alice")
    bob = await identity.ensure_user("bob")

    launch = await projects.create(alice, "Launch 🚀", AWKWARD)
    archive = await projects.create(alice, "أرشيف", "")
    await projects.create(alice, "\\N", None)
    await tasks.create(alice, CreateTask("Plain"))
    done = await tasks.create(
        alice,
        CreateTask(
            AWKWARD.strip(),
            description=AWKWARD,
            priority=Priority.URGENT,
            due_date=date(2026, 12, 31),
            project_id=launch.id,
        ),
    )
    await tasks.update(alice, _id(done.id), TaskChanges(done=True))
    gone = await tasks.create(alice, CreateTask("Deleted, leaves a gap"))
    await tasks.delete(alice, _id(gone.id))
    old = await tasks.create(
        alice, CreateTask("Filed away", description="", project_id=archive.id)
    )
    await tasks.update(alice, _id(old.id), TaskChanges(done=True))
    await tasks.update(alice, _id(old.id), TaskChanges(done=False))
    await projects.update(alice, _id(archive.id), ProjectChanges(archived=True))

    bobs = await projects.create(bob, "Launch 🚀", None)
    await tasks.create(bob, CreateTask("Bob's, in his project", project_id=bobs.id))
    await tasks.create(bob, CreateTask("\\", priority=Priority.LOW))
    return {"alice": alice, "bob": bob}


def _id(entity_id: int | None) -> int:
    assert entity_id is not None
    return entity_id
