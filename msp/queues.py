"""Which Celery queue every task goes to: the one place routing is decided.

Four queue groups, so that each gets workers (and concurrency) of its own and a backlog in one
never delays the others:

- ``ingest``: telemetry-side work that grows with the number of series (rollups and the monthly
  cost they refresh, retention, partitions) and the per-minute alert rule evaluation that reads
  them;
- ``jobs``: the job engine's runs (compliance, readiness and optimisation scans, reports); a
  kind may name another queue (``JobKind.queue``), which the run's message then carries;
- ``maintenance``: short bookkeeping (SLA breach scans, the outbox drain, lost-run recovery,
  schedules firing, pruning);
- ``notifications``: event publishing and webhook, chat and email delivery, escalations.

``settings.CELERY_TASK_ROUTES`` points at :func:`route_task`. No task sets a queue itself (a
task's ``queue`` attribute or an ``apply_async(queue=…)`` would override this table); the one
exception is a job run, whose queue is its kind's. ``tests/test_queues.py`` walks every
registered task and fails for one missing here.

Plain data and functions only: ``msp/settings.py`` imports this before Django is set up.
"""

from __future__ import annotations

INGEST = "ingest"
JOBS = "jobs"
MAINTENANCE = "maintenance"
NOTIFICATIONS = "notifications"
QUEUES = (INGEST, JOBS, MAINTENANCE, NOTIFICATIONS)

#: The generic chunk task of a fleet fan-out (``tenants.tasks.fleet_chunk``): it goes to the
#: queue of the per-tenant task it runs.
FLEET_CHUNK_TASK = "tenants.fleet_chunk"

TASK_QUEUES: dict[str, str] = {
    # Telemetry: rollups (which refresh the monthly costs), retention, partitions.
    "telemetry.rollup_fleet": INGEST,
    "telemetry.rollup_tenant": INGEST,
    "telemetry.retention_fleet": INGEST,
    "telemetry.retention_tenant": INGEST,
    "telemetry.partitions_ensure": INGEST,
    "telemetry.gpus_discover_fleet": INGEST,
    "telemetry.gpus_discover_tenant": INGEST,
    # Alert rules read telemetry every minute: they scale with it, next to the rollups.
    "incidents.alert_rules_evaluate_fleet": INGEST,
    "incidents.alert_rules_evaluate_tenant": INGEST,
    # The job engine.
    "jobs.execute": JOBS,
    "jobs.noop": JOBS,
    # Bookkeeping.
    "jobs.run_schedule": MAINTENANCE,
    "jobs.drain_outbox": MAINTENANCE,
    "jobs.recover_runs": MAINTENANCE,
    "jobs.diagnostic_ping": MAINTENANCE,
    "incidents.sla_breach_scan": MAINTENANCE,
    "incidents.sla_breach_scan_tenant": MAINTENANCE,
    "reports.schedule_monthly": MAINTENANCE,
    "reports.schedule_monthly_tenant": MAINTENANCE,
    "events.prune": MAINTENANCE,
    "events.prune_tenant": MAINTENANCE,
    # Delivery: publishing, webhooks, chat, email, escalations (which send at once).
    "events.publish_outbox": NOTIFICATIONS,
    "events.publish_tenant": NOTIFICATIONS,
    "events.send_due": NOTIFICATIONS,
    "events.send_tenant_due": NOTIFICATIONS,
    "events.send_msp_due": NOTIFICATIONS,
    "events.escalations_fleet": NOTIFICATIONS,
    "events.escalations_tenant": NOTIFICATIONS,
}

#: Celery's own tasks (chords, result clean-up): bookkeeping.
BUILTIN_PREFIX = "celery."


def queue_for(name: str, kwargs: dict | None = None) -> str | None:
    """The queue of task ``name`` (None: not in the table)."""
    if name == FLEET_CHUNK_TASK:
        inner = (kwargs or {}).get("task")
        return TASK_QUEUES.get(inner) if isinstance(inner, str) else None
    if name.startswith(BUILTIN_PREFIX):
        return MAINTENANCE
    return TASK_QUEUES.get(name)


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router (``task_routes``): an explicit queue (a job run's kind) wins, as Celery
    merges it over this; a task missing from the table goes to the default queue."""
    queue = queue_for(name, kwargs)
    return {"queue": queue} if queue else None
