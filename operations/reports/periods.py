"""Report periods: calendar months and quarters in the tenant's time zone."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


@dataclass(frozen=True)
class Period:
    kind: str  # "monthly" or "quarterly"
    start: dt.date  # first day
    end: dt.date  # first day after
    label: str  # 2026-11, 2026-Q4

    def bounds(self, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) as aware datetimes at local midnight in ``zone``."""
        return _midnight(self.start, zone), _midnight(self.end, zone)

    @property
    def title(self) -> str:
        if self.kind == "monthly":
            return self.start.strftime("%B %Y")
        return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"

    def previous(self) -> Period:
        if self.kind == "monthly":
            return month_period(_shift_month(self.start, -1))
        return quarter_period(_shift_month(self.start, -3))


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone)


def _shift_month(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_period(day: dt.date) -> Period:
    start = day.replace(day=1)
    return Period("monthly", start, _shift_month(start, 1), start.strftime("%Y-%m"))


def quarter_period(day: dt.date) -> Period:
    start = dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    quarter = (start.month - 1) // 3 + 1
    return Period("quarterly", start, _shift_month(start, 3), f"{start.year}-Q{quarter}")


def period_parse(kind: str, label: str) -> Period:
    """The period named ``label`` (``2026-11`` for a month, ``2026-Q4`` for a quarter)."""
    if kind == "monthly":
        match = _MONTH.match(label or "")
        if not match:
            raise ValidationError({"period": ["Give a month as YYYY-MM, e.g. 2026-11."]})
        return month_period(dt.date(int(match[1]), int(match[2]), 1))
    match = _QUARTER.match(label or "")
    if not match:
        raise ValidationError({"period": ["Give a quarter as YYYY-Qn, e.g. 2026-Q4."]})
    return quarter_period(dt.date(int(match[1]), (int(match[2]) - 1) * 3 + 1, 1))


def period_last_complete(kind: str, *, today: dt.date) -> Period:
    """The newest period of ``kind`` that ended before ``today`` (a local date)."""
    current = month_period(today) if kind == "monthly" else quarter_period(today)
    return current.previous()


def period_check_complete(period: Period, *, today: dt.date) -> None:
    if period.end > today:
        raise ValidationError({"period": [f"{period.label} has not ended yet."]})
    if period.start.year < 2000:
        raise ValidationError({"period": ["Give a period from 2000 on."]})
