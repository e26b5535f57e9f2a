"""Celery tasks of the job engine. Thin: they take ids and call the engine's services.

Reliability settings (see ``msp/settings.py``): ``task_acks_late`` and
``task_reject_on_worker_lost`` (a message is acknowledged after the work, and redelivered when
the worker dies), prefetch multiplier 1, a Redis visibility timeout above the longest job, and
soft/hard time limits. Transient errors are retried with capped exponential backoff and jitter.
"""

from __future__ import annotations

import logging
import socket
import uuid

from celery import shared_task
from django.core.cache import cache
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from operations.jobs.exceptions import TransientJobError
from operations.jobs.execution import (
    drop_broken_connection,
    job_run_execute,
    worker_connection_prepare,
)
from operations.jobs.outbox import outbox_drain
from operations.jobs.registry import MAX_ATTEMPTS_LIMIT
from operations.jobs.services import job_runs_recover, job_schedule_fire

logger = logging.getLogger(__name__)

DIAGNOSTIC_KEY = "diagnostic:{nonce}"

# Retries of a transient error: 10 s, 20 s, 40 s … capped at 10 min, each with full jitter.
# A kind's ``max_attempts`` (at most MAX_ATTEMPTS_LIMIT) decides when to stop, not Celery.
MAX_TRANSIENT_RETRIES = MAX_ATTEMPTS_LIMIT - 1
TRANSIENT_RETRY = {
    "autoretry_for": (TransientJobError,),
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": MAX_TRANSIENT_RETRIES,
}


@shared_task(
    bind=True,
    name="jobs.execute",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    **TRANSIENT_RETRY,
)
def execute_job_run(self, *, run_id: int, tenant_id: int | None = None) -> str:
    """Run one attempt of a JobRun. The task id must be the run's ``task_id``."""
    if not isinstance(run_id, int) or (tenant_id is not None and not isinstance(tenant_id, int)):
        raise TypeError("jobs.execute takes integer ids")
    try:
        uuid.UUID(str(self.request.id))
    except ValueError:
        logger.warning("jobs.execute: task id %r is not a run's task id; dropped", self.request.id)
        return "stale message"
    if not self.request.is_eager:
        # As Django does around a request: drop a connection past CONN_MAX_AGE or broken (with
        # CONN_HEALTH_CHECKS), keep a healthy one; no health check of a connection the previous
        # job used moments ago. Celery's own fixup closes it after every task unless
        # CELERY_DB_REUSE_MAX is set, costing a new connection per job.
        worker_connection_prepare()
    try:
        return job_run_execute(
            run_id=run_id,
            tenant_id=tenant_id,
            task_id=str(self.request.id),
            use_heartbeat=not self.request.is_eager,
        )
    except (OperationalError, InterfaceError) as exc:
        # The connection broke in the engine's own bookkeeping (claim, finish): retry the
        # delivery with backoff on a new connection. The claim is fenced, so a retry of a run
        # that was claimed after all is dropped and lease recovery takes the run over.
        drop_broken_connection()
        raise TransientJobError(f"database connection lost: {exc}".strip()[:400]) from exc


@shared_task(
    bind=True,
    name="jobs.run_schedule",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_schedule(self, *, tenant_id: int, key: str) -> int | None:
    """Beat fires a tenant's schedule: submit the run (a redelivered tick submits nothing)."""
    run = job_schedule_fire(tenant_id=tenant_id, key=key, dedupe_key=f"beat:{self.request.id}")
    return run.pk if run is not None else None


@shared_task(name="jobs.drain_outbox", ignore_result=True)
def drain_outbox() -> dict:
    """Send what the outbox still holds (messages whose broker was down at commit)."""
    result = outbox_drain()
    if result.sent or result.failed:
        logger.info("jobs outbox: sent %s, failed %s, pending %s", *vars(result).values())
    return {"sent": result.sent, "failed": result.failed, "pending": result.pending}


@shared_task(name="jobs.recover_runs", ignore_result=True)
def recover_runs() -> dict:
    """Re-queue runs whose worker died; re-send queued runs whose message was lost."""
    result = job_runs_recover()
    if result.requeued or result.failed or result.resent or result.parents_finished:
        logger.warning("jobs recovery: %s", vars(result))
    return vars(result)


@shared_task(name="jobs.noop", ignore_result=True)
def noop_task() -> None:
    """A bare Celery task that does nothing: the baseline ``bench/jobs.py`` compares against."""


@shared_task(name="jobs.diagnostic_ping", ignore_result=True)
def diagnostic_ping(nonce: str) -> None:
    """Proves a real worker consumes from the configured broker (``manage.py diagnose_worker``)."""
    cache.set(
        DIAGNOSTIC_KEY.format(nonce=nonce),
        {"worker": socket.gethostname(), "at": timezone.now().isoformat()},
        timeout=600,
    )
