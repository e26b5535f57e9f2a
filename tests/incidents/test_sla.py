"""SLA clock arithmetic: worked examples and properties across weekends and DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from operations.incidents.sla import (
    WorkingCalendar,
    add_business_duration,
    add_business_minutes,
    business_duration_between,
    business_minutes_between,
    calendar_for_plan,
)
from tenants.models import ServicePlan

UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")

OFFICE_LONDON = WorkingCalendar.business_hours(
    timezone="Europe/London", days=range(5), start=dt.time(9), end=dt.time(17)
)


def local(zone, *args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=zone)


# --- Worked examples ------------------------------------------------------------------------


def test_24x7_is_plain_time():
    start = local(UTC, 2026, 3, 28, 23, 50)
    assert add_business_minutes(start, 90, WorkingCalendar.always_on()) == start + dt.timedelta(
        minutes=90
    )
    assert business_minutes_between(start, start + dt.timedelta(hours=5), WorkingCalendar()) == 300


def test_friday_afternoon_rolls_over_the_weekend():
    friday = local(LONDON, 2026, 6, 12, 16, 30)  # a Friday, BST
    due = add_business_minutes(friday, 60, OFFICE_LONDON)
    assert due == local(LONDON, 2026, 6, 15, 9, 30)  # Monday 09:30
    assert business_minutes_between(friday, due, OFFICE_LONDON) == 60


def test_a_clock_started_at_night_or_at_the_weekend_starts_with_the_next_window():
    saturday = local(LONDON, 2026, 6, 13, 11, 0)
    assert add_business_minutes(saturday, 15, OFFICE_LONDON) == local(LONDON, 2026, 6, 15, 9, 15)
    early = local(LONDON, 2026, 6, 16, 6, 0)
    assert add_business_minutes(early, 480, OFFICE_LONDON) == local(LONDON, 2026, 6, 16, 17, 0)
    assert add_business_minutes(early, 481, OFFICE_LONDON) == local(LONDON, 2026, 6, 17, 9, 1)


def test_zero_minutes_is_the_start_itself():
    saturday = local(LONDON, 2026, 6, 13, 11, 0)
    assert add_business_minutes(saturday, 0, OFFICE_LONDON) == saturday


def test_working_time_is_counted_in_the_tenant_zone_not_utc():
    # 09:00-17:00 New York is 13:00-21:00 UTC in summer.
    calendar = WorkingCalendar.business_hours(
        timezone="America/New_York", days=range(5), start=dt.time(9), end=dt.time(17)
    )
    start = local(UTC, 2026, 7, 1, 12, 0)  # 08:00 in New York
    assert add_business_minutes(start, 30, calendar) == local(UTC, 2026, 7, 1, 13, 30)


def test_spring_forward_night_window_is_an_hour_shorter_in_real_time():
    # 29 March 2026, London: 01:00 GMT becomes 02:00 BST. A 00:00-06:00 window lasts 5 hours.
    night = WorkingCalendar.business_hours(
        timezone="Europe/London", days=range(7), start=dt.time(0), end=dt.time(6)
    )
    start = local(LONDON, 2026, 3, 29, 0, 0)
    end = local(LONDON, 2026, 3, 29, 6, 0)
    assert business_minutes_between(start, end, night) == 5 * 60
    assert add_business_minutes(start, 5 * 60, night) == end
    # The sixth hour is next night's first.
    assert add_business_minutes(start, 6 * 60, night) == local(LONDON, 2026, 3, 30, 1, 0)


def test_fall_back_night_window_is_an_hour_longer_in_real_time():
    # 25 October 2026, London: 02:00 BST becomes 01:00 GMT. A 00:00-06:00 window lasts 7 hours.
    night = WorkingCalendar.business_hours(
        timezone="Europe/London", days=range(7), start=dt.time(0), end=dt.time(6)
    )
    start = local(LONDON, 2026, 10, 25, 0, 0)
    end = local(LONDON, 2026, 10, 25, 6, 0)
    assert business_minutes_between(start, end, night) == 7 * 60


def test_a_day_window_keeps_its_wall_clock_hours_across_a_dst_change():
    # New York moves to EDT on 8 March 2026 (a Sunday): Friday 16:00 EST + 2h = Monday 10:00 EDT.
    calendar = WorkingCalendar.business_hours(
        timezone="America/New_York", days=range(5), start=dt.time(9), end=dt.time(17)
    )
    friday = local(NEW_YORK, 2026, 3, 6, 16, 0)
    due = add_business_minutes(friday, 120, calendar)
    assert due == local(NEW_YORK, 2026, 3, 9, 10, 0)
    assert due.astimezone(UTC) == local(UTC, 2026, 3, 9, 14, 0)


def test_between_is_negative_backwards_and_only_counts_working_time():
    monday_9 = local(LONDON, 2026, 6, 15, 9, 0)
    tuesday_9 = local(LONDON, 2026, 6, 16, 9, 0)
    assert business_minutes_between(monday_9, tuesday_9, OFFICE_LONDON) == 480
    assert business_minutes_between(tuesday_9, monday_9, OFFICE_LONDON) == -480


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="negative"):
        add_business_minutes(local(UTC, 2026, 1, 1), -1, OFFICE_LONDON)
    with pytest.raises(ValueError, match="aware"):
        add_business_minutes(dt.datetime(2026, 1, 1), 5, OFFICE_LONDON)  # noqa: DTZ001
    with pytest.raises(ValueError, match="end after"):
        WorkingCalendar.business_hours(timezone="UTC", days=[0], start=dt.time(17), end=dt.time(9))
    with pytest.raises(ValueError, match="working days"):
        WorkingCalendar.business_hours(timezone="UTC", days=[], start=dt.time(9), end=dt.time(17))


def test_calendar_from_a_service_plan():
    plan = ServicePlan(
        coverage="business_hours",
        timezone="Asia/Kolkata",
        business_days=[6, 0, 1, 2, 3],
        business_hours_start=dt.time(10),
        business_hours_end=dt.time(18, 30),
    )
    calendar = calendar_for_plan(plan)
    assert not calendar.always
    assert calendar.days == frozenset({6, 0, 1, 2, 3})
    assert (calendar.start, calendar.end, calendar.timezone) == (
        dt.time(10),
        dt.time(18, 30),
        "Asia/Kolkata",
    )
    assert calendar_for_plan(ServicePlan(coverage="24x7")).always
    assert calendar_for_plan(None).always


# --- Properties -----------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Asia/Kolkata",
    "Pacific/Chatham",
]

# Days around the DST changes of those zones, so the night windows straddle them often.
DST_DAYS = [
    dt.datetime(2026, 3, 8, tzinfo=UTC),
    dt.datetime(2026, 3, 29, tzinfo=UTC),
    dt.datetime(2026, 4, 5, tzinfo=UTC),
    dt.datetime(2026, 10, 4, tzinfo=UTC),
    dt.datetime(2026, 10, 25, tzinfo=UTC),
    dt.datetime(2026, 11, 1, tzinfo=UTC),
    dt.datetime(2025, 9, 28, tzinfo=UTC),
]


@st.composite
def calendars(draw) -> WorkingCalendar:
    if draw(st.integers(0, 9)) == 0:
        return WorkingCalendar.always_on()
    zone = draw(st.sampled_from(ZONES))
    days = draw(st.sets(st.integers(0, 6), min_size=1, max_size=7))
    # Windows of at least half an hour, some covering the small hours where clocks change.
    start_minute = draw(st.integers(0, 23 * 60 + 29))
    end_minute = draw(st.integers(start_minute + 30, 23 * 60 + 59))
    return WorkingCalendar.business_hours(
        timezone=zone,
        days=days,
        start=dt.time(*divmod(start_minute, 60)),
        end=dt.time(*divmod(end_minute, 60)),
    )


@st.composite
def moments(draw) -> dt.datetime:
    if draw(st.booleans()):
        base = draw(st.sampled_from(DST_DAYS))
        offset = draw(st.integers(-3 * 24 * 60 * 60, 3 * 24 * 60 * 60))
        return base + dt.timedelta(seconds=offset, microseconds=draw(st.integers(0, 999_999)))
    return draw(
        st.datetimes(
            min_value=dt.datetime(2024, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
            max_value=dt.datetime(2027, 12, 31),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    )


minutes = st.integers(0, 60 * 24 * 10)
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(start=moments(), amount=minutes, calendar=calendars())
@example(start=local(LONDON, 2026, 3, 29, 0, 30), amount=45, calendar=OFFICE_LONDON)
def test_between_inverts_add(start, amount, calendar):
    due = add_business_minutes(start, amount, calendar)
    assert business_minutes_between(start, due, calendar) == amount


@PROPERTY_SETTINGS
@given(start=moments(), first=minutes, second=minutes, calendar=calendars())
def test_add_is_monotonic(start, first, second, calendar):
    low, high = sorted((first, second))
    assert add_business_minutes(start, low, calendar) <= add_business_minutes(start, high, calendar)
    assert add_business_minutes(start, low, calendar) >= start


@PROPERTY_SETTINGS
@given(start=moments(), amount=st.integers(1, 60 * 24 * 10), calendar=calendars())
def test_a_deadline_always_falls_inside_working_hours(start, amount, calendar):
    due = add_business_minutes(start, amount, calendar)
    # Inside a window or on its end: the instant just before it is working time.
    assert calendar.is_working_time(due - dt.timedelta(microseconds=1))


@PROPERTY_SETTINGS
@given(start=moments(), amount=minutes)
def test_24x7_equals_a_plain_timedelta(start, amount):
    calendar = WorkingCalendar.always_on()
    assert add_business_minutes(start, amount, calendar) == start + dt.timedelta(minutes=amount)
    end = start + dt.timedelta(minutes=amount)
    assert business_minutes_between(start, end, calendar) == amount


@PROPERTY_SETTINGS
@given(start=moments(), first=minutes, second=minutes, calendar=calendars())
def test_adding_in_two_steps_equals_adding_once(start, first, second, calendar):
    step = add_business_minutes(start, first, calendar)
    assert add_business_minutes(step, second, calendar) == add_business_minutes(
        start, first + second, calendar
    )


@PROPERTY_SETTINGS
@given(a=moments(), b=moments(), c=moments(), calendar=calendars())
def test_between_adds_up_over_consecutive_spans(a, b, c, calendar):
    a, b, c = sorted((a, b, c))
    assume(c - a < dt.timedelta(days=400))
    whole = business_duration_between(a, c, calendar)
    assert (
        business_duration_between(a, b, calendar) + business_duration_between(b, c, calendar)
        == whole
    )
    # Working time never exceeds the real time that passed.
    assert dt.timedelta(0) <= whole <= c - a


@PROPERTY_SETTINGS
@given(start=moments(), paused=st.integers(0, 60 * 24 * 5), amount=minutes, calendar=calendars())
def test_a_pause_pushes_the_deadline_by_exactly_the_paused_working_time(
    start, paused, amount, calendar
):
    # The incident clock: due = add(created, target + paused working time).
    pause_start = add_business_minutes(start, amount // 2, calendar)
    pause_end = pause_start + dt.timedelta(minutes=paused)
    lost = business_duration_between(pause_start, pause_end, calendar)
    due = add_business_duration(start, dt.timedelta(minutes=amount) + lost, calendar)
    counted = business_duration_between(start, due, calendar) - lost
    assert counted == dt.timedelta(minutes=amount)
