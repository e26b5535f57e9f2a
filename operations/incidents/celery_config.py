"""The periodic tasks incidents need, for beat.

With django-celery-beat's DatabaseScheduler, beat copies these entries into ``PeriodicTask`` rows
at start-up (visible and editable in the admin). Wire it with one line in ``msp/celery.py``::

    app.conf.beat_schedule = {**app.conf.beat_schedule, **INCIDENTS_BEAT_SCHEDULE}

Plain data only: this module is imported before Django is set up.
"""

from __future__ import annotations

INCIDENTS_BEAT_SCHEDULE = {
    "incidents: mark SLA breaches": {
        "task": "incidents.sla_breach_scan",
        "schedule": 60.0,
        # A missed minute is caught by the next run; never let runs pile up behind an outage.
        "options": {"expires": 55},
    },
    "incidents: evaluate alert rules": {
        "task": "incidents.alert_rules_evaluate_fleet",
        "schedule": 60.0,
        # Evaluations are idempotent and judged as of when they run: a late one is useless.
        "options": {"expires": 55},
    },
}
