"""JSON Lines of new tasks, read as the API reads a `POST /tasks` body."""

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from pydantic import ValidationError

from application.loading import LineRejected
from application.services import CreateTask
from domain.errors import InvalidValue
from entrypoints.http.schemas import TaskCreate


def read_tasks(lines: Iterable[bytes]) -> Iterator[tuple[int, CreateTask]]:
    """(line number, command) for each non-blank line; LineRejected for a line
    that is not a valid `TaskCreate` body."""
    validate = TaskCreate.model_validate_json
    for number, line in enumerate(lines, start=1):
        if line.isspace() or not line:
            continue
        try:
            body = validate(line)
        except ValidationError as error:
            raise LineRejected(number, _invalid(error)) from None
        yield (
            number,
            CreateTask(
                body.title,
                body.description,
                body.priority,
                body.due_date,
                body.project_id,
            ),
        )


def count_lines(file: BinaryIO) -> int | None:
    """How many lines a regular file has (then rewound), or None for a stream."""
    if not file.seekable():
        return None
    count, last = 0, b"\n"
    while chunk := file.read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    file.seek(0)
    return count + (last != b"\n")


def _invalid(error: ValidationError) -> InvalidValue:
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return InvalidValue(field, f"{field}: {message}" if field else message)
