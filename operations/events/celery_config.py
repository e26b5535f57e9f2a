"""The periodic tasks of the delivery context, for beat (merged in ``msp/celery.py``).

Plain data only: this module is imported before Django is set up.
"""

from __future__ import annotations

EVENTS_BEAT_SCHEDULE = {
    "events: publish the outbox": {
        "task": "events.publish_outbox",
        "schedule": 5.0,
        "options": {"queue": "maintenance", "expires": 4},
    },
    "events: send due deliveries": {
        "task": "events.send_due",
        "schedule": 10.0,
        "options": {"queue": "maintenance", "expires": 9},
    },
    "events: prune the outbox and deliveries": {
        "task": "events.prune",
        "schedule": 3600.0,
        "options": {"queue": "maintenance", "expires": 3000},
    },
}
