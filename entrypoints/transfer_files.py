"""The files `taskhub export` writes and `taskhub import` reads: JSON Lines or CSV.

One record per line (JSON Lines) or row (CSV), `kind` "project" or "task", an
owner's projects before its tasks. Timestamps are UTC with microseconds
(`2026-11-22T19:00:00.000000Z`), dates `YYYY-MM-DD`, priorities by name.

CSV has one header row of COLUMNS; a field that a kind has not is empty. Text
cannot say null by itself there, so a field that is exactly `\\N` is null, and
a text that begins with a backslash is written with one more in front (`\\N`
as text is `\\\\N`); an empty field is an empty text.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import IO, Annotated, Any, Final, Literal, TextIO

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from application.transfer import (
    PROJECT_FIELDS,
    TASK_FIELDS,
    Line,
    ProjectRecord,
    Record,
    TaskRecord,
)
from domain.errors import InvalidValue
from domain.values import Priority

Format = Literal["jsonl", "csv"]
FORMATS: Final[tuple[Format, ...]] = ("jsonl", "csv")

COLUMNS: Final = (
    "kind",
    "owner",
    "id",
    "name",
    "title",
    "description",
    "archived",
    "done",
    "completed_at",
    "priority",
    "due_date",
    "project_id",
    "created_at",
    "updated_at",
    "version",
)
NULL: Final = "\\N"


def format_for(path: str, chosen: str | None) -> Format:
    """The format asked for, else the one the file name says, else JSON Lines."""
    if chosen is not None:
        return "csv" if chosen == "csv" else "jsonl"
    return "csv" if path.lower().endswith(".csv") else "jsonl"


def moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _values(record: Record) -> dict[str, Any]:
    """The record's fields in file order, as JSON values."""
    kind = "project" if isinstance(record, ProjectRecord) else "task"
    fields = PROJECT_FIELDS if kind == "project" else TASK_FIELDS
    values: dict[str, Any] = {"kind": kind}
    if record.owner is not None:
        values["owner"] = record.owner
    for name in fields:
        value = getattr(record, name)
        if isinstance(value, datetime):
            value = moment(value)
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Priority):
            value = value.value
        values[name] = value
    return values


class JsonLinesWriter:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, record: Record) -> None:
        line = json.dumps(_values(record), ensure_ascii=False, separators=(",", ":"))
        self._out.write(line + "\n")


class CsvWriter:
    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)  # RFC 4180: CRLF, quotes where needed
        self._writer.writerow(COLUMNS)

    def write(self, record: Record) -> None:
        values = _values(record)
        self._writer.writerow([_cell(values, column) for column in COLUMNS])


def _cell(values: dict[str, Any], column: str) -> str:
    if column not in values:
        return ""
    value = values[column]
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "\\" + value if value.startswith("\\") else value
    return str(value)


def writer_for(file_format: Format, out: TextIO) -> JsonLinesWriter | CsvWriter:
    return CsvWriter(out) if file_format == "csv" else JsonLinesWriter(out)


# What a line must hold: types only. The entities check the values.
class _ProjectLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["project"]
    owner: str | None = None
    id: int
    name: str
    description: str | None
    archived: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int

    def record(self) -> ProjectRecord:
        return ProjectRecord(
            id=self.id,
            name=self.name,
            description=self.description,
            archived=self.archived,
            created_at=self.created_at.astimezone(UTC),
            updated_at=self.updated_at.astimezone(UTC),
            version=self.version,
            owner=self.owner,
        )


class _TaskLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["task"]
    owner: str | None = None
    id: int
    title: str
    description: str | None
    done: bool
    completed_at: AwareDatetime | None
    priority: Priority
    due_date: date | None
    project_id: int | None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: int

    def record(self) -> TaskRecord:
        completed_at = self.completed_at
        return TaskRecord(
            id=self.id,
            title=self.title,
            description=self.description,
            done=self.done,
            completed_at=None if completed_at is None else completed_at.astimezone(UTC),
            priority=self.priority,
            due_date=self.due_date,
            project_id=self.project_id,
            created_at=self.created_at.astimezone(UTC),
            updated_at=self.updated_at.astimezone(UTC),
            version=self.version,
            owner=self.owner,
        )


_LINE: Final = TypeAdapter(
    Annotated[_ProjectLine | _TaskLine, Field(discriminator="kind")],
    # Only the keys: pydantic's cache of string values would fill with titles.
    config=ConfigDict(cache_strings="keys"),
)


def read_json_lines(lines: Iterable[bytes]) -> Iterator[Line]:
    """(line number, record or why not) for each non-blank line."""
    for number, line in enumerate(lines, start=1):
        if not line or line.isspace():
            continue
        try:
            # Strict: a JSON string is no number, nor a number a boolean.
            yield number, _LINE.validate_json(line, strict=True).record()
        except ValidationError as error:
            yield number, _invalid(error)


def read_csv(source: IO[bytes]) -> Iterator[Line]:
    """(line number where the row starts, record or why not) for each row."""
    text = io.TextIOWrapper(source, encoding="utf-8", newline="")
    try:
        yield from _csv_rows(text)
    finally:
        text.detach()  # the caller closes the file (and may rewind it)


def _csv_rows(text: TextIO) -> Iterator[Line]:
    rows = csv.reader(text, strict=True)
    start = 1
    try:
        header = next(rows, None)
        if header is None:
            return
        unknown = [name for name in header if name not in COLUMNS]
        if unknown or "kind" not in header:
            problem = f"unknown column {unknown[0]!r}" if unknown else "no column kind"
            yield 1, InvalidValue("header", f"the header has {problem}.")
            return
        start = rows.line_num + 1
        for row in rows:
            if row:
                yield start, _csv_record(header, row)
            start = rows.line_num + 1
    except (csv.Error, UnicodeDecodeError) as error:
        # The file cannot be read on past this point.
        yield start, InvalidValue("line", f"not CSV: {error}")


def _csv_record(header: list[str], row: list[str]) -> Record | InvalidValue:
    if len(row) != len(header):
        return InvalidValue("line", f"{len(row)} fields, the header has {len(header)}.")
    values: dict[str, Any] = {}
    kind = dict(zip(header, row, strict=True)).get("kind")
    fields = PROJECT_FIELDS if kind == "project" else TASK_FIELDS
    for name, cell in zip(header, row, strict=True):
        # Empty cells of fields this kind has not are not part of the record.
        if cell == "" and name not in fields:
            continue
        if cell == NULL:
            values[name] = None
        elif cell.startswith("\\"):
            values[name] = cell[1:]
        else:
            values[name] = cell
    try:
        line: _ProjectLine | _TaskLine = _LINE.validate_python(values)
    except ValidationError as error:
        return _invalid(error)
    return line.record()


def read_records(source: IO[bytes], file_format: Format) -> Iterator[Line]:
    if file_format == "csv":
        return read_csv(source)
    return read_json_lines(source)


def _invalid(error: ValidationError) -> InvalidValue:
    first = error.errors(include_url=False)[0]
    # A union names its member first (`project.name`): the field is enough.
    parts = [str(p) for p in first["loc"] if p not in ("project", "task")]
    field = ".".join(parts)
    message = first["msg"].removeprefix("Value error, ")
    return InvalidValue(field, f"{field}: {message}" if field else message)
