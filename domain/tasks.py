"""The Task aggregate."""

from dataclasses import dataclass, replace
from datetime import date, datetime

from domain.errors import InvalidValue
from domain.values import (
    UNSET,
    Priority,
    Unset,
    check_history,
    check_moment,
    clean_description,
    clean_text,
    search_key,
)

TITLE_MAX = 200


def clean_title(value: str) -> str:
    return clean_text("title", value, min_length=1, max_length=TITLE_MAX)


@dataclass(frozen=True, slots=True)
class TaskChanges:
    """A partial update: fields left UNSET stay as they are, None clears."""

    title: str | Unset = UNSET
    description: str | Unset | None = UNSET
    done: bool | Unset = UNSET
    priority: Priority | Unset = UNSET
    due_date: date | Unset | None = UNSET
    project_id: int | Unset | None = UNSET


@dataclass(slots=True)
class Task:
    title: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    priority: Priority = Priority.NORMAL
    due_date: date | None = None
    project_id: int | None = None
    done: bool = False
    completed_at: datetime | None = None
    version: int = 1
    owner_id: int | None = None  # stamped by the owner's repository on add
    id: int | None = None  # assigned by the repository on add

    @classmethod
    def create(
        cls,
        title: str,
        now: datetime,
        *,
        description: str | None = None,
        priority: Priority = Priority.NORMAL,
        due_date: date | None = None,
        project_id: int | None = None,
    ) -> "Task":
        return cls(
            title=clean_title(title),
            description=clean_description(description),
            priority=priority,
            due_date=due_date,
            project_id=project_id,
            created_at=now,
            updated_at=now,
        )

    @classmethod
    def restore(
        cls,
        title: str,
        *,
        description: str | None,
        priority: Priority,
        due_date: date | None,
        project_id: int | None,
        done: bool,
        completed_at: datetime | None,
        created_at: datetime,
        updated_at: datetime,
        version: int,
    ) -> "Task":
        """A task as it was stored before (an export, say), under the rules of
        `create` for its text and a consistent history: done exactly when it
        has a completed_at, never changed before it was created."""
        check_history(created_at, updated_at, version)
        if done != (completed_at is not None):
            raise InvalidValue(
                "completed_at", "completed_at is set exactly when done is true."
            )
        if completed_at is not None:
            check_moment("completed_at", completed_at)
        task = cls.create(
            title,
            created_at,
            description=description,
            priority=priority,
            due_date=due_date,
            project_id=project_id,
        )
        task.done, task.completed_at = done, completed_at
        task.updated_at, task.version = updated_at, version
        return task

    @property
    def title_key(self) -> str:
        """The form titles are searched and sorted in."""
        return search_key(self.title)

    def apply(self, changes: TaskChanges, now: datetime) -> bool:
        """Apply `changes`; return whether anything changed (only then bump version)."""
        # Validate everything before touching anything, so a bad field changes nothing.
        title = self.title if changes.title is UNSET else clean_title(changes.title)
        description = (
            self.description
            if changes.description is UNSET
            else clean_description(changes.description)
        )
        before = self.copy()
        self.title, self.description = title, description
        if changes.priority is not UNSET:
            self.priority = changes.priority
        if changes.due_date is not UNSET:
            self.due_date = changes.due_date
        if changes.project_id is not UNSET:
            self.project_id = changes.project_id
        if changes.done is not UNSET:
            self._set_done(changes.done, now)
        if self == before:
            return False
        self.updated_at = now
        self.version += 1
        return True

    def complete(self, now: datetime) -> bool:
        return self.apply(TaskChanges(done=True), now)

    def reopen(self, now: datetime) -> bool:
        return self.apply(TaskChanges(done=False), now)

    def copy(self) -> "Task":
        return replace(self)

    def _set_done(self, done: bool, now: datetime) -> None:
        if done and not self.done:
            self.completed_at = now
        elif not done:
            self.completed_at = None
        self.done = done
