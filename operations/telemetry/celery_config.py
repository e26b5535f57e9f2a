"""The periodic tasks telemetry needs, for beat.

With django-celery-beat's DatabaseScheduler, beat copies these entries into ``PeriodicTask``
rows at start-up (visible and editable in the admin). Wire it with one line in
``msp/celery.py``::

    app.conf.beat_schedule = {**app.conf.beat_schedule, **TELEMETRY_BEAT_SCHEDULE}

- rollups every 5 minutes: an hour's rollup trails its last samples by at most that;
- partitions every hour: tomorrow's and the day after's exist long before they are needed,
  so ingest almost never makes one (which would lock the parent table for its transaction);
- GPU discovery every 5 minutes (VictoriaMetrics only; it also marks the hours of forwarded
  and directly written dcgm series for the rollup);
- retention once a day, at 03:17 UTC (away from the hour, when other jobs start).

Plain data only: this module is imported before Django is set up.
"""

from __future__ import annotations

from celery.schedules import crontab

TELEMETRY_BEAT_SCHEDULE = {
    "telemetry: roll up touched hours": {
        "task": "telemetry.rollup_fleet",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "telemetry: learn GPUs from VictoriaMetrics": {
        "task": "telemetry.gpus_discover_fleet",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
    "telemetry: make partitions ahead": {
        "task": "telemetry.partitions_ensure",
        "schedule": crontab(minute=7),
        "options": {"expires": 3000},
    },
    "telemetry: enforce retention": {
        "task": "telemetry.retention_fleet",
        "schedule": crontab(hour=3, minute=17),
        "options": {"expires": 3600},
    },
}
