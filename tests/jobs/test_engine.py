"""The engine in-process: submit, claim, attempts, outcomes, idempotency, cancel, recovery."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from operations.jobs import services
from operations.jobs.exceptions import JobStateConflict, LeaseLost, TransientJobError
from operations.jobs.execution import JobContext, claim, finish, job_run_execute
from operations.jobs.models import JobDispatch, JobRun, JobStatus, JobTrigger
from operations.jobs.registry import get_job_kind
from operations.jobs.tasks import execute_job_run
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.jobs.conftest import deliver, expire_lease, logs_of, reload
from tests.jobs.kinds import effect, effects_of

pytestmark = pytest.mark.django_db


# --- Submit and the outbox ---------------------------------------------------------------------


def test_submit_stores_the_run_and_sends_its_message_only_after_commit(tenant_a, sent, committed):
    with committed(), transaction.atomic():
        run = services.job_submit(tenant=tenant_a, kind="noop")
        assert JobDispatch.objects.filter(task_id=str(run.task_id)).exists()
        assert sent == []
    assert sent == [
        {
            "task": "jobs.execute",
            "kwargs": {"run_id": run.pk, "tenant_id": tenant_a.id},
            "task_id": str(run.task_id),
            "queue": "jobs",
        }
    ]
    assert not JobDispatch.objects.exists()  # delivered, so no longer pending
    run = reload(run)
    assert (run.status, run.trigger, run.attempts) == ("queued", "system", 0)
    assert run.parameters == {"seconds": 0.0}  # defaults resolved and stored


def test_a_rolled_back_submit_leaves_no_run_and_sends_nothing(tenant_a, sent, committed):
    def submit_then_fail():
        with transaction.atomic():
            services.job_submit(tenant=tenant_a, kind="noop")
            raise RuntimeError("the caller's transaction fails")

    with committed(), pytest.raises(RuntimeError):
        submit_then_fail()
    with tenant_scope(tenant_a.id):
        assert not JobRun.objects.exists()
    assert not JobDispatch.objects.exists()
    assert sent == []


def test_unknown_kinds_and_bad_parameters_are_refused(tenant_a):
    with pytest.raises(ValidationError) as unknown:
        services.job_submit(tenant=tenant_a, kind="nope")
    assert "kind" in unknown.value.message_dict
    with pytest.raises(ValidationError) as bad:
        services.job_submit(tenant=tenant_a, kind="noop", parameters={"seconds": 99})
    assert set(bad.value.message_dict) == {"parameters.seconds"}
    with pytest.raises(ValidationError) as typo:
        services.job_submit(tenant=tenant_a, kind="noop", parameters={"secs": 1})
    assert set(typo.value.message_dict) == {"parameters.secs"}
    with pytest.raises(ValidationError) as none_taken:
        services.job_submit(tenant=tenant_a, kind="test_failing", parameters={"x": 1})
    assert "parameters" in none_taken.value.message_dict
    with pytest.raises(ValidationError):
        services.job_submit(tenant=None, kind="noop")


def test_no_parameters_clean_to_the_defaults_each_time_and_each_run_gets_its_own_copy():
    from rest_framework import serializers

    from operations.jobs.registry import JobKind

    noop = get_job_kind("noop")
    first = noop.clean_parameters(None)
    assert first == noop.clean_parameters({}) == {"seconds": 0.0}
    first["seconds"] = 5
    assert noop.clean_parameters(None) == {"seconds": 0.0}

    stamps = iter(["first", "second"])

    class Stamped(serializers.Serializer):
        stamp = serializers.CharField(default=lambda: next(stamps))

    class Checked(serializers.Serializer):
        size = serializers.IntegerField(default=1)

        def validate(self, attrs):
            raise serializers.ValidationError("refused every time")

    def kind(parameters):
        return JobKind(name="test_defaults", func=lambda run, p: None, parameters=parameters)

    # A callable default is worked out per submit, and a validate hook runs on every submit.
    stamped = kind(Stamped)
    assert [stamped.clean_parameters(None) for _ in range(2)] == [
        {"stamp": "first"},
        {"stamp": "second"},
    ]
    checked = kind(Checked)
    for _ in range(2):
        with pytest.raises(ValidationError):
            checked.clean_parameters({})


def test_a_user_submit_is_audited_with_who_triggered_it(tenant_a, sent):
    user = make_member(tenant_a, username="alice")
    run = services.job_submit(tenant=tenant_a, kind="noop", trigger=JobTrigger.USER, user=user)
    assert (run.trigger, run.triggered_by_user, run.triggered_by_label) == ("user", user, "alice")
    event = AuditEvent.objects.get(object_type="jobs.JobRun", object_id=str(run.pk))
    assert (event.tenant_id, event.action) == (tenant_a.id, "create")


def test_dedupe_key_returns_the_first_run(tenant_a, sent):
    first = services.job_submit(tenant=tenant_a, kind="noop", dedupe_key="tick-1")
    again = services.job_submit(tenant=tenant_a, kind="noop", dedupe_key="tick-1")
    assert again.pk == first.pk
    with tenant_scope(tenant_a.id):
        assert JobRun.objects.count() == 1


# --- Execution ---------------------------------------------------------------------------------


def test_a_noop_job_runs_to_success_with_timings_and_logs(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(tenant=tenant_a, kind="noop", parameters={"seconds": 0.01})
    run = reload(run)
    assert run.status == JobStatus.SUCCEEDED
    assert (run.progress, run.attempts, run.result) == (100, 1, {"waited_seconds": 0.01})
    assert run.started_at <= run.finished_at
    assert run.lease_expires_at is None
    assert logs_of(run) == []  # a plain first attempt: everything is on the run itself


def test_a_redelivered_message_for_a_finished_run_does_nothing(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(tenant=tenant_a, kind="test_countable")
    assert reload(run).status == JobStatus.SUCCEEDED
    assert deliver(run) == "already finished"
    assert deliver(run) == "already finished"
    run = reload(run)
    assert (run.status, run.attempts) == (JobStatus.SUCCEEDED, 1)
    assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]


def test_a_message_with_another_task_id_or_for_a_missing_run_is_dropped(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    stale = execute_job_run.apply(
        kwargs={"run_id": run.pk, "tenant_id": tenant_a.id},
        task_id="00000000-0000-4000-8000-000000000000",
    ).get()
    assert stale == "stale message"
    missing = execute_job_run.apply(
        kwargs={"run_id": 999999, "tenant_id": tenant_a.id}, task_id=str(run.task_id)
    ).get()
    assert missing == "missing"
    assert reload(run).status == JobStatus.QUEUED


def test_a_run_is_invisible_to_a_message_naming_another_tenant(tenant_a, tenant_b, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    wrong = execute_job_run.apply(
        kwargs={"run_id": run.pk, "tenant_id": tenant_b.id}, task_id=str(run.task_id)
    ).get()
    assert wrong == "missing"
    assert reload(run).status == JobStatus.QUEUED


def test_a_run_held_by_a_live_worker_is_not_taken_over(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    _, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert claimed
    assert deliver(run) == "running elsewhere"
    assert reload(run).attempts == 1


def test_a_run_whose_worker_died_is_taken_over_and_its_committed_work_not_redone(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="test_countable")
    # Attempt 1 commits effect 1, then its worker dies (no finish, the lease runs out).
    first, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert claimed
    context = JobContext(first, get_job_kind("test_countable"))
    context.once("effect:1", lambda: effect(context, 1))
    expire_lease(run)

    assert deliver(run) == "succeeded"
    run = reload(run)
    assert (run.status, run.attempts, run.result["attempt"]) == (JobStatus.SUCCEEDED, 2, 2)
    assert effects_of(run.pk) == [f"{run.pk}:1", f"{run.pk}:2"]
    assert "Attempt 2 started (the previous attempt did not finish)." in logs_of(run)


def test_an_attempt_that_was_taken_over_cannot_write_any_more(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="test_countable")
    first, _ = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    zombie = JobContext(first, get_job_kind("test_countable"))
    expire_lease(run)
    second, claimed = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert claimed
    assert second.attempts == 2

    with pytest.raises(LeaseLost):
        zombie.progress(90, "still here?")
    with pytest.raises(LeaseLost):
        zombie.once("effect:1", lambda: pytest.fail("a zombie must not do the work"))
    assert finish(zombie, JobStatus.SUCCEEDED, result={"zombie": True}) is False
    run = reload(run)
    assert (run.status, run.progress, run.result) == (JobStatus.RUNNING, 0, {})


def test_a_run_that_lost_its_worker_too_often_fails(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="test_countable")
    for _ in range(3):
        claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
        expire_lease(run)
    assert deliver(run) == "failed"
    run = reload(run)
    assert run.status == JobStatus.FAILED
    assert "Gave up after 3 attempts" in run.error
    assert effects_of(run.pk) == []


def test_a_failing_job_records_its_error_and_traceback(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(tenant=tenant_a, kind="test_failing")
    run = reload(run)
    assert run.status == JobStatus.FAILED
    assert run.error == "ValueError: boom: the secret internals"
    assert "Traceback" in run.traceback
    assert "raise ValueError" in run.traceback
    assert "About to fail" in logs_of(run)


def test_transient_errors_are_retried_until_they_pass(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(
            tenant=tenant_a, kind="test_transient", parameters={"succeed_on_attempt": 3}
        )
    run = reload(run)
    assert (run.status, run.attempts, run.result) == (JobStatus.SUCCEEDED, 3, {"attempt": 3})
    logs = logs_of(run)
    assert any("Transient error on attempt 1 of 3" in line for line in logs)
    assert any("Transient error on attempt 2 of 3" in line for line in logs)


def test_transient_errors_fail_the_run_once_its_attempts_are_spent(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(
            tenant=tenant_a, kind="test_transient", parameters={"succeed_on_attempt": 9}
        )
    run = reload(run)
    assert (run.status, run.attempts) == (JobStatus.FAILED, 3)
    assert "gave up after 3 attempts" in run.error


def test_the_transient_retry_policy_is_capped_exponential_backoff_with_jitter():
    task = execute_job_run
    assert task.autoretry_for == (TransientJobError,)
    assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter) == (10, 600, True)
    assert task.acks_late
    assert task.reject_on_worker_lost


# --- Cancel ------------------------------------------------------------------------------------


def test_cancelling_a_queued_run_stops_it_before_it_starts(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="test_countable")
    services.job_cancel(run=run, label="bob")
    run = reload(run)
    assert (run.status, run.cancel_requested_by) == (JobStatus.CANCELLED, "bob")
    assert deliver(run) == "already finished"
    assert effects_of(run.pk) == []


def test_a_running_job_stops_at_its_next_progress_point(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(
            tenant=tenant_a, kind="test_self_cancelling", parameters={"cancel_at_step": 2}
        )
    run = reload(run)
    assert run.status == JobStatus.CANCELLED
    assert run.progress == 20
    logs = logs_of(run)
    assert "did step 1" in logs
    assert "did step 2" not in logs
    assert "Stopped: the run was cancelled." in logs


def test_a_finished_run_cannot_be_cancelled(tenant_a, eager, committed):
    with committed():
        run = services.job_submit(tenant=tenant_a, kind="noop")
    with pytest.raises(JobStateConflict):
        services.job_cancel(run=reload(run), label="bob")


# --- Recovery ----------------------------------------------------------------------------------


def test_recovery_requeues_runs_of_lost_workers_and_fails_exhausted_ones(
    tenant_a, tenant_b, sent, committed
):
    lost = services.job_submit(tenant=tenant_a, kind="noop")
    exhausted = services.job_submit(tenant=tenant_b, kind="noop")
    alive = services.job_submit(tenant=tenant_b, kind="noop")
    for run in (lost, exhausted, alive):
        claim(run_id=run.pk, tenant_id=run.tenant_id, task_id=str(run.task_id))
    for _ in range(2):
        expire_lease(exhausted)
        claim(run_id=exhausted.pk, tenant_id=exhausted.tenant_id, task_id=str(exhausted.task_id))
    expire_lease(lost)
    expire_lease(exhausted)
    sent.clear()

    with committed():
        result = services.job_runs_recover()
    assert (result.requeued, result.failed) == (1, 1)
    assert reload(lost).status == JobStatus.QUEUED
    assert reload(exhausted).status == JobStatus.FAILED
    assert reload(alive).status == JobStatus.RUNNING
    assert [m["task_id"] for m in sent] == [str(lost.task_id)]
    assert deliver(lost) == "succeeded"
    assert reload(lost).attempts == 2


def test_recovery_resends_a_queued_run_whose_message_was_lost(tenant_a, sent, committed, settings):
    settings.JOBS_QUEUED_RESEND_AFTER_SECONDS = 60
    run = services.job_submit(tenant=tenant_a, kind="noop")
    JobDispatch.objects.all().delete()  # as if the message had been sent, then lost
    with tenant_scope(tenant_a.id):
        JobRun.objects.filter(pk=run.pk).update(
            created_at=timezone.now() - timezone.timedelta(minutes=5)
        )
    with committed():
        assert services.job_runs_recover().resent == 1
    assert [m["task_id"] for m in sent] == [str(run.task_id)]
    with committed():  # sent again moments ago: not again
        assert services.job_runs_recover().resent == 0


def test_engine_outcomes_are_reported(tenant_a, sent):
    run = services.job_submit(tenant=tenant_a, kind="noop")
    outcome = job_run_execute(
        run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id), use_heartbeat=False
    )
    assert outcome == "succeeded"
