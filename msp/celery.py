"""The Celery app. Tasks take ids, never model instances, and set the tenant scope themselves."""

import os

from celery import Celery

from operations.events.celery_config import EVENTS_BEAT_SCHEDULE
from operations.incidents.celery_config import INCIDENTS_BEAT_SCHEDULE
from operations.jobs.celery_config import JOBS_BEAT_SCHEDULE
from operations.reports.celery_config import REPORTS_BEAT_SCHEDULE
from operations.telemetry.celery_config import TELEMETRY_BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")

app = Celery("msp")
app.config_from_object("django.conf:settings", namespace="CELERY")
# The platform's own periodic work; beat's DatabaseScheduler copies it into editable rows.
app.conf.beat_schedule = {
    **JOBS_BEAT_SCHEDULE,
    **INCIDENTS_BEAT_SCHEDULE,
    **TELEMETRY_BEAT_SCHEDULE,
    **EVENTS_BEAT_SCHEDULE,
    **REPORTS_BEAT_SCHEDULE,
}
app.autodiscover_tasks()
