"""The job engine's knobs, read from Django settings (``JOBS_*``) with production defaults.

Read once and kept (every job consults them several times); a change of any setting (tests'
``settings`` fixture, ``override_settings``) drops the kept copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed


@dataclass(frozen=True)
class JobEngineSettings:
    #: How long a claim holds without a heartbeat; after that another delivery may take over.
    lease_seconds: int
    #: How often a running job's worker renews its lease (well under ``lease_seconds``).
    heartbeat_seconds: float
    #: Tenants per chunk when a fleet run fans out.
    fleet_chunk_size: int
    #: Outbox rows younger than this are left to their on-commit sender, not the drain.
    outbox_grace_seconds: int
    #: A queued run this old whose message is neither in the outbox nor in the broker is
    #: re-sent (the broker lost it: Redis restarted empty).
    queued_resend_after_seconds: int
    #: Without a complete view of the broker (another transport, an overlong queue), a queued
    #: run is re-sent only after this long: past the broker's own redelivery window.
    queued_stale_seconds: int
    #: Buffered log lines are written at every progress point, and at least this often.
    log_flush_seconds: float
    log_flush_lines: int
    #: Log lines returned with a run's detail (the newest ones).
    detail_log_limit: int
    #: Commit the worker's bookkeeping without waiting for the WAL flush (PostgreSQL; see
    #: ``operations.jobs.execution``).
    relaxed_commit: bool
    #: Extra modules that register job kinds (each app's ``job_kinds`` module is found anyway).
    kind_modules: tuple[str, ...]


@cache
def engine_settings() -> JobEngineSettings:
    return JobEngineSettings(
        lease_seconds=getattr(settings, "JOBS_LEASE_SECONDS", 120),
        heartbeat_seconds=getattr(settings, "JOBS_HEARTBEAT_SECONDS", 20),
        fleet_chunk_size=getattr(settings, "JOBS_FLEET_CHUNK_SIZE", 200),
        outbox_grace_seconds=getattr(settings, "JOBS_OUTBOX_GRACE_SECONDS", 15),
        queued_resend_after_seconds=getattr(settings, "JOBS_QUEUED_RESEND_AFTER_SECONDS", 300),
        queued_stale_seconds=getattr(
            settings,
            "JOBS_QUEUED_STALE_SECONDS",
            # Past the broker's own redelivery window: by then the message is truly gone.
            settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600) + 600,
        ),
        log_flush_seconds=getattr(settings, "JOBS_LOG_FLUSH_SECONDS", 2.0),
        log_flush_lines=getattr(settings, "JOBS_LOG_FLUSH_LINES", 100),
        detail_log_limit=getattr(settings, "JOBS_DETAIL_LOG_LIMIT", 500),
        relaxed_commit=getattr(settings, "JOBS_RELAXED_COMMIT", True),
        kind_modules=tuple(getattr(settings, "JOBS_KIND_MODULES", ())),
    )


def _forget_engine_settings(**kwargs) -> None:
    engine_settings.cache_clear()


setting_changed.connect(_forget_engine_settings, dispatch_uid="jobs.engine_settings")
