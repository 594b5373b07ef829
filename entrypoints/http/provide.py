"""dependency-injector's `Provide` marker, awaited by FastAPI rather than threaded."""

from typing import TYPE_CHECKING

from dependency_injector import wiring

if TYPE_CHECKING:  # the stub types the stock marker as a value, not a class
    from dependency_injector.wiring import Provide as Provide
else:

    class Provide(wiring.Provide):
        """Use as `Depends(Provide[Container.x])` under `@inject`, as the stock one.

        FastAPI calls a dependency to get its value, and runs a plain (non-async)
        callable in its thread pool. The stock marker is one, so every injected
        service cost a thread hop per request: a large share of a cheap
        request's time. This marker's call is a coroutine, so FastAPI awaits it
        inline, and `@inject` still replaces the marker with the provided object.
        """

        async def __call__(self):
            return self


def is_marker(value: object) -> bool:
    """Whether `value` is a `Provide[...]` marker, as `Depends` is given it."""
    return isinstance(value, wiring.Provide)  # type: ignore[arg-type]
