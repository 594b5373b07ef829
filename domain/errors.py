"""The one tree of errors that the domain and the use cases raise.

    DomainError
    ├── Unauthenticated
    ├── NotFound
    │   ├── TaskNotFound
    │   ├── ProjectNotFound
    │   ├── UserNotFound
    │   └── TokenNotFound
    ├── Conflict
    │   ├── ProjectNameTaken
    │   ├── ProjectArchived
    │   ├── ProjectHasTasks
    │   ├── UserNameTaken
    │   ├── ConcurrentUpdate
│   ├── IdTaken
    │   └── RequestInProgress
    ├── VersionMismatch
    ├── IdempotencyKeyReused
    └── InvalidValue

Entry points map this tree to their own vocabulary once (HTTP: 401, 404, 409,
412, 422); nothing below them knows about status codes.
"""


class DomainError(Exception):
    """Root of every error the domain and the use cases raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(DomainError):
    """The caller did not prove who it is. Deliberately says no more than that."""

    def __init__(self) -> None:
        super().__init__("A valid API token is required.")


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Conflict(DomainError):
    """The request is well formed but clashes with the current state."""


class InvalidValue(DomainError):
    """A value breaks a rule of the domain; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TaskNotFound(NotFound):
    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} does not exist.")
        self.task_id = task_id


class ProjectNotFound(NotFound):
    def __init__(self, project_id: int) -> None:
        super().__init__(f"Project {project_id} does not exist.")
        self.project_id = project_id


class ProjectNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"A project named {name!r} already exists (names ignore case)."
        )
        self.name = name


class ProjectArchived(Conflict):
    def __init__(self, project_id: int) -> None:
        super().__init__(f"Project {project_id} is archived and accepts no tasks.")
        self.project_id = project_id


class ProjectHasTasks(Conflict):
    def __init__(self, project_id: int, task_count: int | None = None) -> None:
        if task_count is None:
            tasks = "tasks"
        else:
            tasks = f"{task_count} task" + ("" if task_count == 1 else "s")
        super().__init__(
            f"Project {project_id} still has {tasks}; delete or move them first."
        )
        self.project_id = project_id
        self.task_count = task_count


class ConcurrentUpdate(Conflict):
    def __init__(self, kind: str, entity_id: int) -> None:
        super().__init__(
            f"{kind} {entity_id} was changed by another request meanwhile; "
            "fetch it again and retry."
        )


class VersionMismatch(DomainError):
    """The caller made its change conditional on versions the entity is not at."""

    def __init__(self, kind: str, entity_id: int, version: int) -> None:
        super().__init__(
            f"{kind} {entity_id} is at version {version}, not at a version the "
            "request expected; fetch it again and decide anew."
        )
        self.version = version


class RequestInProgress(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; "
            "retry shortly to get its response."
        )


class IdempotencyKeyReused(DomainError):
    """An idempotency key came back with a different request than its first."""

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was used for a different request; "
            "use a new key for a new request."
        )


class UserNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is no user named {name!r}.")


class TokenNotFound(NotFound):
    def __init__(self, token: str) -> None:
        super().__init__(f"There is no token {token!r}.")


class UserNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"A user named {name!r} already exists.")


class IdTaken(Conflict):
    def __init__(self, kind: str, entity_id: int | None = None) -> None:
        which = "one of these ids" if entity_id is None else f"the id {entity_id}"
        super().__init__(f"A {kind.lower()} with {which} already exists.")
        self.kind = kind


class TasksBusy(Conflict):
    """Other work held the tasks for longer than a bulk load would wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"Other work held the tasks for over {seconds:g} s; nothing was "
            "stored. Try again when it is quieter."
        )
