"""The paths beside the HTTP routes name the owner too: the `taskhub tasks load`
loader and the token commands run here under the api suite's statement audit
(see conftest.py), which fails a test at teardown for any statement on an owned
table without an owner predicate."""

import pytest

from adapters.sqlalchemy.mapping import TASK_COLUMNS
from domain.projects import Project
from entrypoints.container import Container
from entrypoints.task_lines import read_tasks
from tests.statement_audit import StatementAudit

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("database_url", SQL_BACKENDS, indirect=True)
async def test_loading_tasks_names_the_owner_in_every_statement(
    container: Container, owner_id: int, statement_audit: StatementAudit
) -> None:
    async with container.unit_of_work(owner_id=owner_id) as uow:
        project = Project.create("Inbox", None, container.clock().now())
        await uow.projects.add(project)
        await uow.commit()
    lines = [
        b'{"title": "One"}\n',
        f'{{"title": "Two", "project_id": {project.id}}}\n'.encode(),
    ]
    loaded = await container.task_loader().load(owner_id, read_tasks(lines))

    assert loaded == 2
    # The project check is a statement; the rows are one on SQLite and a COPY
    # on PostgreSQL, which the audit does not see: its columns carry the owner.
    audited = [s.sql for s in statement_audit.statements]
    assert any("FROM projects" in sql for sql in audited)
    assert "owner_id" in TASK_COLUMNS


@pytest.mark.parametrize("database_url", SQL_BACKENDS, indirect=True)
async def test_the_token_commands_touch_no_owned_table(
    container: Container, owner_id: int, statement_audit: StatementAudit
) -> None:
    identity = container.identity_service()
    issued = await identity.issue_token("alice", "laptop")
    assert [t.name for t in await identity.list_tokens("alice")] == ["laptop"]
    await identity.revoke_token(issued.record.prefix)
    await identity.create_user("bob")

    assert any("api_tokens" in s.sql for s in statement_audit.statements)
