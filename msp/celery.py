"""The Celery app. Tasks take ids, never model instances, and set the tenant scope themselves."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")

app = Celery("msp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
