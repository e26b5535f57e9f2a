"""The periodic task reports need, for beat (plain data: imported before Django is set up).

Hourly, so each active tenant's report of last month is submitted soon after midnight of the 1st
in the tenant's own time zone; the tick is idempotent (one run per tenant and month).
"""

from __future__ import annotations

from celery.schedules import crontab

REPORTS_BEAT_SCHEDULE = {
    "reports: monthly service reports due": {
        "task": "reports.schedule_monthly",
        "schedule": crontab(minute=23),
        "options": {"expires": 3000},
    },
}
