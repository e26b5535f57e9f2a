"""Demo data and the management commands."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from operations.jobs import demo, services
from operations.jobs.models import JobDispatch, JobLog, JobRun, JobSchedule, JobStatus
from operations.jobs.registry import nightly_job_kinds
from tenants.scoping import tenant_scope
from tests.jobs.conftest import activate, only_nightly, reload

pytestmark = pytest.mark.django_db


def test_seed_jobs_is_idempotent_and_shows_finished_runs_and_live_schedules(tenant_a, tenant_b):
    active = activate(tenant_a)
    first = demo.seed_jobs(active)
    again = demo.seed_jobs(active)
    assert sorted(r.pk for r in first) == sorted(r.pk for r in again)
    assert {run.status for run in first} == {"succeeded", "failed", "cancelled"}
    with tenant_scope(active.id):
        expected = sum(len(spec["logs"]) for spec in demo._runs(active, timezone.now()))
        assert JobLog.objects.count() == expected > 0  # each demo run's log lines, once
        schedules = list(JobSchedule.objects.select_related("periodic_task"))
    # The live demo schedule, and one nightly schedule per nightly kind (none are disabled).
    nightly = sorted(f"nightly:{kind.name}" for kind in nightly_job_kinds())
    assert sorted(s.key for s in schedules) == sorted([demo.LIVE_SCHEDULE_KEY, *nightly])
    assert all(s.periodic_task.enabled for s in schedules)
    failed = next(run for run in first if run.status == JobStatus.FAILED)
    assert failed.traceback
    assert failed.error

    prospect_runs = demo.seed_jobs(tenant_b)
    assert len(prospect_runs) == 4
    with tenant_scope(tenant_b.id):
        assert not JobSchedule.objects.exists()


def test_a_calm_tenants_demo_runs_all_went_through_and_a_stopped_one_ran_back_then(
    tenant_a, tenant_b
):
    calm = demo.seed_jobs(tenant_a, failures=False)
    assert {run.status for run in calm} == {"succeeded", "cancelled"}

    back_then = timezone.now() - dt.timedelta(days=4)
    stopped = demo.seed_jobs(tenant_b, now=back_then)
    assert max(run.created_at for run in stopped) < back_then


def test_drain_command_sends_waiting_messages(tenant_a, sent):
    services.job_submit(tenant=tenant_a, kind="noop")
    assert JobDispatch.objects.count() == 1
    call_command("drain_job_outbox")
    assert not JobDispatch.objects.exists()
    assert len(sent) == 1


def test_drain_command_fails_loudly_with_the_broker_down(tenant_a):
    from tests.jobs.broker import CLOSED_PORT_BROKER, broker_at

    services.job_submit(tenant=tenant_a, kind="noop")
    with broker_at(CLOSED_PORT_BROKER), pytest.raises(CommandError, match="refused"):
        call_command("drain_job_outbox")
    dispatch = JobDispatch.objects.get()
    assert dispatch.attempts == 1
    assert dispatch.available_at > dispatch.created_at  # backing off


def test_run_job_and_recover_commands(tenant_a, eager, committed, capsys):
    with committed():
        call_command("run_job", "noop", "--tenant", tenant_a.slug, "--parameters", '{"seconds": 0}')
    out = capsys.readouterr().out
    assert out.startswith("queued noop run")
    with tenant_scope(tenant_a.id):
        run = JobRun.objects.get()
    assert reload(run).status == JobStatus.SUCCEEDED
    with pytest.raises(CommandError):
        call_command("run_job", "noop", "--tenant", "nobody")
    with pytest.raises(CommandError, match="Refused"):
        call_command("run_job", "noop", "--tenant", tenant_a.slug, "--parameters", '{"x": 1}')
    call_command("recover_job_runs")
    assert "re-queued 0" in capsys.readouterr().out


def test_ensure_job_schedules_command_backfills_active_tenants(tenant_a, tenant_b, capsys):
    with only_nightly("test_nightly"):
        activate(tenant_a)
        call_command("ensure_job_schedules")
    out = capsys.readouterr().out
    assert f"{tenant_a.slug}: 1 schedule(s) active" in out
    assert f"{tenant_b.slug}: 0 schedule(s) paused" in out
    assert PeriodicTask.objects.filter(task="jobs.run_schedule").count() == 1
