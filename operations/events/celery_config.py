"""The periodic tasks of the delivery context, for beat (merged in ``msp/celery.py``).

Plain data only: this module is imported before Django is set up.
"""

from __future__ import annotations

EVENTS_BEAT_SCHEDULE = {
    "events: publish the outbox": {
        "task": "events.publish_outbox",
        "schedule": 5.0,
        "options": {"expires": 4},
    },
    "events: send due deliveries": {
        "task": "events.send_due",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    # Escalation steps and SLA warnings: each fires once (a unique key), so a late or repeated
    # scan is harmless; a scan lost to a dead worker is the next minute's.
    "events: escalate unacknowledged incidents": {
        "task": "events.escalations_fleet",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "events: prune the outbox and deliveries": {
        "task": "events.prune",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
