"""What a served worker does once it has started (entrypoints.http.app)."""

import gc
import weakref

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.settings import MEMORY_URL
from tests.conftest import test_settings


class _Cycle:
    def __init__(self) -> None:
        self.me = self


async def test_a_served_worker_freezes_what_start_up_built_and_thaws_at_the_end() -> (
    None
):
    app = create_app(build_container(test_settings(MEMORY_URL)), freeze_at_startup=True)
    garbage = _Cycle()
    gone = weakref.ref(garbage)
    del garbage  # unreachable, but only the cyclic collector frees it
    assert gc.get_freeze_count() == 0

    async with app.router.lifespan_context(app):
        frozen = gc.get_freeze_count()
        collected_first = gone() is None

    assert frozen > 1000  # modules, routes, the container: all of start-up
    assert collected_first  # garbage is collected, not frozen for good
    assert gc.get_freeze_count() == 0


async def test_an_app_for_tests_freezes_nothing() -> None:
    app = create_app(build_container(test_settings(MEMORY_URL)))
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
