"""SLA durations read and typed as people write them."""

from __future__ import annotations

import pytest

from tenants.durations import duration_label, parse_duration_minutes


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [
        ("90", 90),
        ("15m", 15),
        ("4h", 240),
        ("1 d 4 h", 1680),
        ("1d4h", 1680),
        ("1.5h", 90),
        ("2 days 3 hours", 3060),
        ("1 h 30 min", 90),
        ("2 hrs", 120),
    ],
)
def test_typed_durations_become_minutes_and_read_back_the_same(typed, minutes):
    assert parse_duration_minutes(typed) == minutes
    assert parse_duration_minutes(duration_label(minutes)) == minutes


@pytest.mark.parametrize("typed", ["", "  ", "abc", "4x", "h", "0.5m", "4h abc", "-5", "1e9"])
def test_anything_else_is_refused_with_a_sentence(typed):
    with pytest.raises(ValueError, match=r"\w+ \w+"):
        parse_duration_minutes(typed)


def test_labels_use_the_largest_whole_units():
    assert [duration_label(m) for m in (0, 15, 90, 1440, 1530)] == [
        "0 min",
        "15 min",
        "1 h 30 min",
        "1 d",
        "1 d 1 h 30 min",
    ]
