"""The in-process moving window: counts, Retry-After, and what it remembers."""

import asyncio
import threading

from entrypoints.http.ratelimit import InProcessWindow, RequestCounter, parse_limit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def window(limit: str, clock: Clock) -> InProcessWindow:
    item = parse_limit(limit)
    assert item is not None
    return InProcessWindow(item, clock)


def test_the_limit_is_spent_one_request_at_a_time_then_refused() -> None:
    counter = window("3/minute", Clock())

    budgets = [counter.spend("a") for _ in range(4)]

    assert [b.allowed for b in budgets] == [True, True, True, False]
    assert [b.remaining for b in budgets] == [2, 1, 0, 0]
    assert {b.limit for b in budgets} == {3}


def test_a_request_counts_for_exactly_one_period_after_it_was_made() -> None:
    clock = Clock()
    counter = window("2/minute", clock)
    counter.spend("a")  # at 0 s
    clock.now += 40
    counter.spend("a")  # at 40 s

    clock.now += 19.5  # 59.5 s: both still count
    refused = counter.spend("a")
    clock.now += 0.5  # 60 s: the first has left, the second has 40 s to go
    allowed = counter.spend("a")

    assert (refused.allowed, refused.reset) == (False, 1)
    assert (allowed.allowed, allowed.remaining, allowed.reset) == (True, 0, 40)


def test_a_refused_request_is_not_counted() -> None:
    clock = Clock()
    counter = window("1/minute", clock)
    counter.spend("a")
    for _ in range(100):
        clock.now += 0.5
        assert not counter.spend("a").allowed

    clock.now += 10  # 60 s after the one counted request
    assert counter.spend("a").allowed


def test_reset_is_when_the_oldest_counted_request_leaves_and_at_least_1_s() -> None:
    clock = Clock()
    counter = window("5/second", clock)
    first = counter.spend("a")
    clock.now += 0.7
    second = counter.spend("a")

    assert first.reset == 1
    assert second.reset == 1  # 0.3 s, rounded up


def test_each_key_has_its_own_window() -> None:
    counter = window("1/hour", Clock())

    assert counter.spend("a").allowed
    assert counter.spend("b").allowed
    assert not counter.spend("a").allowed


def test_keys_idle_for_a_period_are_forgotten_and_active_ones_kept() -> None:
    clock = Clock()
    counter = window("2/minute", clock)
    for key in range(1000):
        counter.spend(f"addr:{key}")
    assert len(counter) == 1000

    clock.now += 59
    counter.spend("addr:7")
    clock.now += 2  # past a period since the window started: a sweep
    budget = counter.spend("addr:8")

    assert len(counter) == 2
    assert budget.remaining == 1  # addr:8's request at 0 s has left its window
    assert counter.spend("addr:7").remaining == 0  # its request at 59 s still counts


def test_a_high_limit_keeps_only_the_requests_of_the_last_period() -> None:
    clock = Clock()
    counter = window("1000000/minute", clock)
    budgets = []
    for _ in range(2_400):
        clock.now += 0.25  # 10 minutes of 4 requests a second
        budgets.append(counter.spend("a"))

    # The last minute's 240 count, however many came before it.
    assert budgets[239].remaining == 1_000_000 - 240
    assert budgets[-1].remaining == 1_000_000 - 240


def test_the_counter_counts_in_process_without_a_thread() -> None:
    limit = parse_limit("2/minute")
    assert limit is not None
    counter = RequestCounter(limit, redis_url=None)

    async def three() -> tuple[list[bool], int, int]:
        threads, tasks = threading.active_count(), len(asyncio.all_tasks())
        budgets = [await counter.spend("a") for _ in range(3)]
        await asyncio.sleep(0.05)  # anything it scheduled has started by now
        started = len(asyncio.all_tasks()) - tasks
        return (
            [b.allowed for b in budgets if b],
            threading.active_count() - threads,
            started,
        )

    assert asyncio.run(three()) == ([True, True, False], 0, 0)
