"""Queues: every task has a known queue (msp/queues.py), and a worker listening on one queue
only consumes that queue's work (real Celery workers sharing the test database)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.utils import timezone

from msp.celery import app
from msp.queues import (
    FLEET_CHUNK_TASK,
    INGEST,
    JOBS,
    MAINTENANCE,
    NOTIFICATIONS,
    QUEUES,
    queue_for,
)
from operations.events.models import OutboxEvent
from operations.incidents.models import Incident
from operations.jobs.models import JobRun, JobStatus
from operations.jobs.registry import job_kinds
from operations.jobs.services import job_submit
from operations.telemetry import services as telemetry_services
from operations.telemetry.models import TelemetryRollup
from tenants.scoping import tenant_scope
from tenants.tasks import FLEET_TENANT_TASKS
from tests.factories import TenantFactory
from tests.incidents.factories import make_incident
from tests.inventory.estate import make_gpu_node
from tests.jobs.worker import wait_until
from tests.telemetry.helpers import iso

ALL_TASKS_LOADED = app.loader.import_default_modules() or True


def project_tasks() -> dict:
    """Every task a worker registers, but the test suite's own."""
    return {name: task for name, task in app.tasks.items() if not name.startswith("tests.")}


def routed_queue(name: str, kwargs: dict | None = None) -> str | None:
    """The queue Celery's own router picks for a message of task ``name`` (no explicit queue)."""
    options = app.amqp.router.route({}, name, (), kwargs or {})
    queue = options.get("queue")
    return getattr(queue, "name", queue)


# --- Routing ---------------------------------------------------------------------------------


def test_every_task_is_routed_to_a_known_queue():
    # Celery would send a task missing from the table to the default queue: the table itself
    # must name every task's queue.
    unrouted = {name for name in project_tasks() if queue_for(name) not in QUEUES}
    # The chunk task has no queue of its own: it takes its per-tenant task's (below).
    assert unrouted == {FLEET_CHUNK_TASK}


def test_celery_routes_through_the_table():
    assert app.conf.task_routes == ("msp.queues.route_task",)
    for name in set(project_tasks()) - {FLEET_CHUNK_TASK}:
        assert routed_queue(name) == queue_for(name), name


def test_no_task_overrides_the_routing_table():
    # A task's own ``queue`` would win over CELERY_TASK_ROUTES and split the table in two.
    own = {name: getattr(task, "queue", None) for name, task in project_tasks().items()}
    assert {name: queue for name, queue in own.items() if queue} == {}


@pytest.mark.parametrize("name", sorted(FLEET_TENANT_TASKS))
def test_a_fleet_chunk_goes_to_the_queue_of_the_task_it_runs(name):
    assert name in app.tasks
    assert routed_queue(FLEET_CHUNK_TASK, {"task": name, "tenant_ids": [1]}) == routed_queue(name)
    assert routed_queue(name) in QUEUES


def test_a_chunk_naming_another_task_is_refused():
    with pytest.raises(ValueError, match="does not run"):
        app.tasks[FLEET_CHUNK_TASK](task="jobs.execute", tenant_ids=[1])


def test_the_beat_entries_leave_the_queue_to_the_routing_table():
    for title, entry in app.conf.beat_schedule.items():
        assert "queue" not in entry.get("options", {}), title
        assert routed_queue(entry["task"]) in QUEUES, title


def test_every_job_kind_runs_on_a_known_queue():
    assert {kind.queue for kind in job_kinds()} <= set(QUEUES)


def test_the_groups_are_where_the_brief_puts_them():
    assert routed_queue("telemetry.rollup_tenant") == INGEST
    assert routed_queue("telemetry.retention_fleet") == INGEST
    assert routed_queue("jobs.execute") == JOBS
    assert routed_queue("incidents.sla_breach_scan") == MAINTENANCE
    assert routed_queue("jobs.drain_outbox") == MAINTENANCE
    assert routed_queue("events.prune") == MAINTENANCE
    assert routed_queue("events.publish_outbox") == NOTIFICATIONS
    assert routed_queue("events.send_tenant_due") == NOTIFICATIONS


# --- One worker per queue --------------------------------------------------------------------


def _ingest_work():
    tenant = TenantFactory(name="Ingest Ltd", slug="ingest-ltd")
    make_gpu_node(tenant, hostname="ingest-gpu-01")
    hour = (timezone.now() - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    sample = {
        "resource": "compute:ingest-gpu-01",
        "metric": "gpu_utilization",
        "ts": iso(hour + dt.timedelta(minutes=5)),
        "value": 42,
    }
    with tenant_scope(tenant.id):
        telemetry_services.telemetry_ingest_batch(tenant=tenant, samples=[sample])
    app.tasks["telemetry.rollup_fleet"].delay()

    def done():
        with tenant_scope(tenant.id):
            return TelemetryRollup.objects.exists()

    return done


def _jobs_work():
    tenant = TenantFactory(name="Jobs Ltd", slug="jobs-ltd")
    with tenant_scope(tenant.id):
        run = job_submit(tenant=tenant, kind="noop")

    def done():
        with tenant_scope(tenant.id):
            return JobRun.objects.get(pk=run.pk).status == JobStatus.SUCCEEDED

    return done


def _maintenance_work():
    tenant = TenantFactory(name="Maintenance Ltd", slug="maintenance-ltd")
    incident = make_incident(tenant, severity="SEV1", at=timezone.now() - dt.timedelta(days=2))
    app.tasks["incidents.sla_breach_scan"].delay()

    def done():
        with tenant_scope(tenant.id):
            return Incident.objects.get(pk=incident.pk).ack_breached_at is not None

    return done


def _notifications_work():
    tenant = TenantFactory(name="Notifications Ltd", slug="notifications-ltd")
    make_incident(tenant)  # records an event in the tenant's outbox
    app.tasks["events.publish_outbox"].delay()

    def done():
        with tenant_scope(tenant.id):
            events = OutboxEvent.objects.all()
            return events.exists() and not events.filter(published_at__isnull=True).exists()

    return done


WORK = {
    INGEST: _ingest_work,
    JOBS: _jobs_work,
    MAINTENANCE: _maintenance_work,
    NOTIFICATIONS: _notifications_work,
}


def test_every_queue_has_a_real_worker_test():
    assert set(WORK) == set(QUEUES)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("queue", QUEUES)
def test_a_worker_on_one_queue_consumes_that_queues_work(pool, queue):
    """The fleet task and its chunk (or the job's run) both reach a worker that listens on
    ``queue`` alone: nothing of the group strays to another queue."""
    with pool.broker():
        pool.start(queues=(queue,))
        done = WORK[queue]()
        wait_until(done, what=f"a worker on {queue!r} alone to do its work", pool=pool)


# --- Process layouts -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _queues_of(command: str) -> set[str]:
    return set(re.search(r"-Q (\S+)", command).group(1).split(","))


def test_the_demo_worker_consumes_every_queue():
    (worker,) = [
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:")
    ]
    assert _queues_of(worker) == set(QUEUES)
    unit = (ROOT / "deploy/systemd/groundwork-worker.service").read_text()
    assert _queues_of(unit) == set(QUEUES)


def test_the_scaled_layout_has_one_worker_per_queue():
    lines = (ROOT / "Procfile.workers").read_text().splitlines()
    workers = {line.split(":", 1)[0]: _queues_of(line) for line in lines if " -Q " in line}
    assert workers == {queue: {queue} for queue in QUEUES}
    assert "-Q %i " in (ROOT / "deploy/systemd/groundwork-worker@.service").read_text()
