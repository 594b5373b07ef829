"""The Project aggregate."""

from dataclasses import dataclass, replace
from datetime import datetime

from domain.values import (
    UNSET,
    Unset,
    check_history,
    clean_description,
    clean_text,
    search_key,
)

NAME_MIN = 2
NAME_MAX = 120


def clean_name(value: str) -> str:
    return clean_text("name", value, min_length=NAME_MIN, max_length=NAME_MAX)


@dataclass(frozen=True, slots=True)
class ProjectChanges:
    """A partial update: fields left UNSET stay as they are."""

    name: str | Unset = UNSET
    description: str | Unset | None = UNSET
    archived: bool | Unset = UNSET


@dataclass(slots=True)
class Project:
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    version: int = 1
    owner_id: int | None = None  # stamped by the owner's repository on add
    id: int | None = None  # assigned by the repository on add

    @classmethod
    def create(cls, name: str, description: str | None, now: datetime) -> "Project":
        return cls(
            name=clean_name(name),
            description=clean_description(description),
            created_at=now,
            updated_at=now,
        )

    @classmethod
    def restore(
        cls,
        name: str,
        description: str | None,
        *,
        archived: bool,
        created_at: datetime,
        updated_at: datetime,
        version: int,
    ) -> "Project":
        """A project as it was stored before (an export, say), under the rules
        of `create` for its text, never changed before it was created."""
        check_history(created_at, updated_at, version)
        project = cls.create(name, description, created_at)
        project.archived, project.updated_at = archived, updated_at
        project.version = version
        return project

    @property
    def name_key(self) -> str:
        """Names are unique in this form: "Roadmap" and "roadmap" clash."""
        return search_key(self.name)

    def apply(self, changes: ProjectChanges, now: datetime) -> bool:
        """Apply `changes`; return whether anything changed (only then bump version)."""
        name = self.name if changes.name is UNSET else clean_name(changes.name)
        description = (
            self.description
            if changes.description is UNSET
            else clean_description(changes.description)
        )
        archived = self.archived if changes.archived is UNSET else changes.archived
        if (name, description, archived) == (
            self.name,
            self.description,
            self.archived,
        ):
            return False
        self.name, self.description, self.archived = name, description, archived
        self._touch(now)
        return True

    def archive(self, now: datetime) -> bool:
        return self.apply(ProjectChanges(archived=True), now)

    def copy(self) -> "Project":
        return replace(self)

    def _touch(self, now: datetime) -> None:
        self.updated_at = now
        self.version += 1
