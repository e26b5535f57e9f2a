"""Events other contexts emit: ``job.failed`` (through the engine's failure hook),
``readiness.level_changed`` (with the snapshot) and the catalogued ``report.ready``. Each
payload validates against its catalogue schema."""

from __future__ import annotations

import jsonschema
import pytest
from django.db import transaction
from django.utils import timezone

import tests.jobs.kinds  # noqa: F401 - registers the test job kinds
from operations.events.catalogue import CATALOGUE
from operations.events.models import OutboxEvent
from operations.jobs import services as job_services
from operations.jobs.lifecycle import job_failed_hooks
from operations.jobs.models import JobRun, JobStatus
from operations.readiness.models import ReadinessScore
from operations.readiness.services import readiness_rescore
from tenants.scoping import tenant_scope
from tests.jobs.conftest import reload
from tests.readiness.builders_core import submitted_assessment

pytestmark = pytest.mark.django_db


def events_of(tenant, topic: str) -> list[OutboxEvent]:
    with tenant_scope(tenant.id):
        return list(OutboxEvent.objects.filter(topic=topic).order_by("id"))


def assert_matches_schema(topic: str, payload: dict) -> None:
    jsonschema.validate(payload, CATALOGUE[topic].schema)


def test_every_catalogue_schema_is_valid_json_schema():
    for event in CATALOGUE.values():
        jsonschema.Draft202012Validator.check_schema(event.schema)
    assert CATALOGUE["job.failed"].emitted
    assert CATALOGUE["readiness.level_changed"].emitted


# --- job.failed ------------------------------------------------------------------------------


def test_a_job_failing_for_good_records_job_failed_once(tenant_a, tenant_b, eager, committed):
    with committed():
        run = job_services.job_submit(tenant=tenant_a, kind="test_failing")
    run = reload(run)
    assert run.status == JobStatus.FAILED
    [event] = events_of(tenant_a, "job.failed")
    assert event.payload["id"] == run.pk
    assert (event.payload["kind"], event.payload["status"], event.payload["attempts"]) == (
        "test_failing",
        "failed",
        1,
    )
    assert event.payload["error"] == "ValueError: boom: the secret internals"
    assert_matches_schema("job.failed", event.payload)
    assert events_of(tenant_b, "job.failed") == []


@pytest.mark.django_db(transaction=True)
def test_on_a_worker_outside_any_transaction_the_failure_brings_its_event(tenant_a):
    """The worker's path (no transaction open; PostgreSQL's one-round-trip finish otherwise)."""
    from tests.jobs.conftest import deliver

    run = job_services.job_submit(tenant=tenant_a, kind="test_failing")
    assert deliver(run) == "failed"
    [event] = events_of(tenant_a, "job.failed")
    assert event.payload["id"] == run.pk
    assert reload(run).status == JobStatus.FAILED


def test_retries_that_end_in_failure_record_it_once_and_a_success_records_nothing(
    tenant_a, eager, committed
):
    with committed():
        failed = job_services.job_submit(
            tenant=tenant_a, kind="test_transient", parameters={"succeed_on_attempt": 9}
        )
        job_services.job_submit(
            tenant=tenant_a, kind="test_transient", parameters={"succeed_on_attempt": 2}
        )
    [event] = events_of(tenant_a, "job.failed")
    assert (event.payload["id"], event.payload["attempts"]) == (failed.pk, 3)
    assert reload(failed).status == JobStatus.FAILED


def test_a_run_whose_worker_died_on_its_last_attempt_records_job_failed_on_recovery(tenant_a):
    with tenant_scope(tenant_a.id):
        run = JobRun.objects.create(
            tenant=tenant_a,
            kind="test_countable",
            status=JobStatus.RUNNING,
            attempts=3,
            max_attempts=3,
            lease_expires_at=timezone.now() - timezone.timedelta(seconds=5),
        )
    result = job_services.job_runs_recover()
    assert result.failed == 1
    [event] = events_of(tenant_a, "job.failed")
    assert (event.payload["id"], event.payload["attempts"]) == (run.pk, 3)
    assert_matches_schema("job.failed", event.payload)


def test_the_failure_and_its_event_share_one_transaction(tenant_a, eager, committed):
    from operations.jobs.lifecycle import _failed_hooks

    def refuse(*, run):
        raise RuntimeError("a hook that fails")

    _failed_hooks.append(refuse)
    try:
        with tenant_scope(tenant_a.id):
            run = JobRun.objects.create(
                tenant=tenant_a,
                kind="test_countable",
                status=JobStatus.RUNNING,
                attempts=3,
                max_attempts=3,
                lease_expires_at=timezone.now() - timezone.timedelta(seconds=5),
            )
        # A savepoint of our own: recovery's transaction joins the test's.
        with pytest.raises(RuntimeError), transaction.atomic():
            job_services.job_runs_recover()
    finally:
        _failed_hooks.remove(refuse)
    assert len(job_failed_hooks()) == 1
    # The event was written, then rolled back with the failure it describes.
    assert events_of(tenant_a, "job.failed") == []
    assert reload(run).status == JobStatus.RUNNING


# --- readiness.level_changed ------------------------------------------------------------------


def test_a_snapshot_records_level_changed_only_when_the_level_moves(tenant_a, tenant_b, framework):
    submitted_assessment(tenant_a, framework, value=1)
    with tenant_scope(tenant_a.id):
        first = readiness_rescore(tenant=tenant_a)
        again = readiness_rescore(tenant=tenant_a)
    assert again.level == first.level
    [baseline] = events_of(tenant_a, "readiness.level_changed")
    assert baseline.payload["previous_level"] is None
    assert (baseline.payload["score_id"], baseline.payload["level"]) == (first.pk, first.level)

    submitted_assessment(tenant_a, framework, value=4)
    with tenant_scope(tenant_a.id):
        moved = readiness_rescore(tenant=tenant_a)
    assert moved.level != first.level
    changed = events_of(tenant_a, "readiness.level_changed")[1:]
    assert [e.payload["score_id"] for e in changed] == [moved.pk]
    payload = changed[0].payload
    assert (payload["previous_level"], payload["level"]) == (first.level, moved.level)
    assert payload["previous_overall"] == str(again.overall)
    assert payload["overall"] == str(moved.overall)
    assert_matches_schema("readiness.level_changed", payload)
    assert events_of(tenant_b, "readiness.level_changed") == []


def test_a_rolled_back_snapshot_leaves_no_event(tenant_a, framework):
    submitted_assessment(tenant_a, framework, value=2)
    with tenant_scope(tenant_a.id), transaction.atomic():
        readiness_rescore(tenant=tenant_a)
        transaction.set_rollback(True)
    with tenant_scope(tenant_a.id):
        assert not ReadinessScore.objects.exists()
    assert events_of(tenant_a, "readiness.level_changed") == []


# --- report.ready (emitted by the reports context) -------------------------------------------


def test_report_ready_is_catalogued_with_the_payload_the_reports_context_sends(tenant_a):
    payload = {
        "id": 7,
        "tenant": tenant_a.slug,
        "kind": "monthly_service",
        "period_start": "2026-11-01",
        "period_end": "2026-11-30",
        "version": 2,
        "download_url": "https://groundwork.example/portal/acme/reports/7/download/",
    }
    assert_matches_schema("report.ready", payload)
    with pytest.raises(jsonschema.ValidationError):
        assert_matches_schema("report.ready", {k: v for k, v in payload.items() if k != "version"})
    with tenant_scope(tenant_a.id), transaction.atomic():
        from operations.events.services import event_record

        event = event_record(tenant=tenant_a, topic="report.ready", payload=payload)
    assert event.payload == payload
