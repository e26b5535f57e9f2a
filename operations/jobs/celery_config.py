"""Celery configuration the job engine needs beyond ``msp/settings.py``.

``JOBS_BEAT_SCHEDULE`` holds the engine's own periodic tasks. With django-celery-beat's
DatabaseScheduler, beat copies these entries into ``PeriodicTask`` rows at start-up (so they are
visible and editable in the admin next to the tenants' schedules). Wire it with one line in
``msp/celery.py``::

    app.conf.beat_schedule = {**app.conf.beat_schedule, **JOBS_BEAT_SCHEDULE}

Settings the engine relies on, in ``msp/settings.py``: ``CELERY_TASK_ACKS_LATE``,
``CELERY_TASK_REJECT_ON_WORKER_LOST``, ``CELERY_WORKER_PREFETCH_MULTIPLIER = 1``, a Redis
``visibility_timeout`` above the hard time limit, soft and hard time limits, and::

    # Celery's Django fixup closes the database connection after every task unless this is
    # set, so each job would open a new PostgreSQL connection (about 10 ms). Connections are
    # still recycled by CONN_MAX_AGE and health checks: jobs.execute calls
    # close_old_connections() before each run, as Django does around a request.
    CELERY_DB_REUSE_MAX = 1000

Plain data only: this module is imported before Django is set up.
"""

from __future__ import annotations

JOBS_BEAT_SCHEDULE = {
    "jobs: drain the outbox": {
        "task": "jobs.drain_outbox",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
    "jobs: recover runs of lost workers": {
        "task": "jobs.recover_runs",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}
