"""SLA clock arithmetic: pure functions over a working calendar, no database.

A clock counts *elapsed real time inside working windows*. A window is one working day's
business hours in the tenant's time zone (or the whole time line for 24x7 coverage). Window
bounds are local wall-clock times turned into UTC with zoneinfo, so a day on which the clocks
change has a window that is an hour longer or shorter in real time, and all arithmetic runs in
UTC (arithmetic on zone-aware datetimes would be wall-clock arithmetic, which is wrong here).

    add_business_minutes(start, minutes, calendar)  -> the moment the clock reaches ``minutes``
    business_minutes_between(a, b, calendar)         -> working minutes from ``a`` to ``b``

They are inverses: ``business_minutes_between(s, add_business_minutes(s, m, c), c) == m``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC
_ONE_DAY = dt.timedelta(days=1)
# Nothing a plan allows (60 days of minutes) needs more than a few years of calendar days.
_MAX_DAYS_SCANNED = 366 * 50


@dataclass(frozen=True)
class WorkingCalendar:
    """When an SLA clock runs: always (24x7), or on ``days`` between ``start`` and ``end``."""

    always: bool = True
    timezone: str = "UTC"
    days: frozenset[int] = frozenset(range(5))  # 0 = Monday ... 6 = Sunday
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)

    def __post_init__(self) -> None:
        if not self.always:
            if not self.days or any(day < 0 or day > 6 for day in self.days):
                raise ValueError("A business-hours calendar needs working days 0..6.")
            if self.start >= self.end:
                raise ValueError("Business hours must end after they start.")

    @classmethod
    def always_on(cls) -> WorkingCalendar:
        return cls(always=True)

    @classmethod
    def business_hours(
        cls, *, timezone: str, days, start: dt.time, end: dt.time
    ) -> WorkingCalendar:
        return cls(always=False, timezone=timezone, days=frozenset(days), start=start, end=end)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def windows_from(self, moment: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Working windows (UTC start, UTC end) in time order, from the one on ``moment``'s
        local date onwards (that first one may already be over)."""
        zone = self.zone
        day = _as_utc(moment).astimezone(zone).date()
        for _ in range(_MAX_DAYS_SCANNED):
            if day.weekday() in self.days:
                begin = _local_to_utc(day, self.start, zone)
                finish = _local_to_utc(day, self.end, zone)
                # A window that falls entirely into a spring-forward gap has no real time.
                if begin < finish:
                    yield begin, finish
            day += _ONE_DAY
        raise RuntimeError("No working window found; is the calendar sane?")

    def is_working_time(self, moment: dt.datetime) -> bool:
        """Whether ``moment`` lies inside a window (start included, end excluded)."""
        if self.always:
            return True
        moment = _as_utc(moment)
        for begin, finish in self.windows_from(moment):
            if begin > moment:
                return False
            if begin <= moment < finish:
                return True
        return False  # pragma: no cover - windows_from raises first


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("SLA arithmetic needs time-zone-aware datetimes.")
    return moment.astimezone(UTC)


def _local_to_utc(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    # fold=0: an ambiguous wall time (clocks going back) is its first occurrence; a wall time
    # that does not exist (clocks going forward) is read with the offset before the change.
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def add_business_minutes(
    start: dt.datetime, minutes: float, calendar: WorkingCalendar
) -> dt.datetime:
    """The moment (UTC) at which ``minutes`` of working time have passed since ``start``.

    Zero minutes is ``start`` itself; a clock started outside working hours begins at the next
    window, so the result of a positive amount always lies inside a window (or on its end).
    """
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    return add_business_duration(start, dt.timedelta(minutes=minutes), calendar)


def add_business_duration(
    start: dt.datetime, duration: dt.timedelta, calendar: WorkingCalendar
) -> dt.datetime:
    """``add_business_minutes`` for an exact timedelta of working time."""
    if duration < dt.timedelta(0):
        raise ValueError("duration must not be negative")
    start = _as_utc(start)
    if calendar.always or not duration:
        return start + duration
    remaining = duration
    for begin, finish in calendar.windows_from(start):
        begin = max(begin, start)
        if begin >= finish:
            continue
        available = finish - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise AssertionError("unreachable")  # pragma: no cover - windows_from raises first


def business_duration_between(
    a: dt.datetime, b: dt.datetime, calendar: WorkingCalendar
) -> dt.timedelta:
    """Working time from ``a`` to ``b`` as an exact timedelta (negative when ``b`` < ``a``)."""
    a, b = _as_utc(a), _as_utc(b)
    if b < a:
        return -business_duration_between(b, a, calendar)
    if calendar.always:
        return b - a
    total = dt.timedelta(0)
    for begin, finish in calendar.windows_from(a):
        if begin >= b:
            break
        overlap = min(finish, b) - max(begin, a)
        if overlap > dt.timedelta(0):
            total += overlap
    return total


def business_minutes_between(a: dt.datetime, b: dt.datetime, calendar: WorkingCalendar) -> float:
    """Working minutes from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
    return business_duration_between(a, b, calendar).total_seconds() / 60


def calendar_for_plan(plan) -> WorkingCalendar:
    """The calendar of a ``tenants.ServicePlan`` (24x7 or its business hours and zone)."""
    if plan is None or plan.coverage != "business_hours":
        return WorkingCalendar.always_on()
    return WorkingCalendar.business_hours(
        timezone=plan.timezone or "UTC",
        days=plan.business_days or range(5),
        start=_as_time(plan.business_hours_start),
        end=_as_time(plan.business_hours_end),
    )


def _as_time(value) -> dt.time:
    return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))
