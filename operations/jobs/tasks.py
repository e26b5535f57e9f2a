"""Diagnostic task: proves a real worker consumes from the configured broker.

The job engine (JobRun rows, outbox, schedules) builds on this app; until then the diagnostic
task answers through the shared cache, which web, worker and commands all reach.
"""

from __future__ import annotations

import socket

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

DIAGNOSTIC_KEY = "diagnostic:{nonce}"


@shared_task(name="jobs.diagnostic_ping", queue="maintenance", ignore_result=True)
def diagnostic_ping(nonce: str) -> None:
    cache.set(
        DIAGNOSTIC_KEY.format(nonce=nonce),
        {"worker": socket.gethostname(), "at": timezone.now().isoformat()},
        timeout=600,
    )
