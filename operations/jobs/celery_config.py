"""Celery configuration the job engine needs beyond ``msp/settings.py``.

``JOBS_BEAT_SCHEDULE`` holds the engine's own periodic tasks. With django-celery-beat's
DatabaseScheduler, beat copies these entries into ``PeriodicTask`` rows at start-up (so they are
visible and editable in the admin next to the tenants' schedules). Wire it with one line in
``msp/celery.py``::

    app.conf.beat_schedule = {**app.conf.beat_schedule, **JOBS_BEAT_SCHEDULE}

Plain data only: this module is imported before Django is set up.
"""

from __future__ import annotations

JOBS_BEAT_SCHEDULE = {
    "jobs: drain the outbox": {
        "task": "jobs.drain_outbox",
        "schedule": 15.0,
        "options": {"queue": "maintenance", "expires": 14},
    },
    "jobs: recover runs of lost workers": {
        "task": "jobs.recover_runs",
        "schedule": 60.0,
        "options": {"queue": "maintenance", "expires": 55},
    },
}
