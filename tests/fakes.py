"""Hand-written fakes with observable state."""

from datetime import UTC, datetime, timedelta


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class TickingClock(FrozenClock):
    """Moves one millisecond per reading, so every timestamp is distinct."""

    def now(self) -> datetime:
        return self.advance(milliseconds=1)
