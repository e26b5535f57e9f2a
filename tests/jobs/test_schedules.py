"""Schedules in the database: nightly per active tenant, staggered, editable, fired by beat."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django_celery_beat.models import PeriodicTask

from operations.jobs import services
from operations.jobs.models import JobRun, JobSchedule, JobTrigger
from operations.jobs.tasks import run_schedule
from tenants import services as tenant_services
from tenants.models import TenantStatus
from tenants.scoping import tenant_scope
from tests.factories import make_staff
from tests.jobs.conftest import activate, only_nightly

pytestmark = pytest.mark.django_db

NIGHTLY = ("test_nightly_compliance", "test_nightly_optimisation")


@pytest.fixture(autouse=True)
def nightly_kinds():
    with only_nightly(*NIGHTLY):
        yield


@pytest.fixture
def active_a(tenant_a):
    tenant_services.service_plan_update(tenant=tenant_a, timezone="Europe/Paris")
    return activate(tenant_a)


def schedules_of(tenant) -> list[JobSchedule]:
    with tenant_scope(tenant.id):
        return list(JobSchedule.objects.select_related("periodic_task__crontab").order_by("key"))


def test_an_active_tenant_gets_staggered_nightly_schedules_in_its_time_zone(active_a):
    services.job_schedules_ensure_for_tenant(tenant=active_a)
    schedules = schedules_of(active_a)
    assert [s.key for s in schedules] == [f"nightly:{name}" for name in NIGHTLY]
    starts = []
    for schedule in schedules:
        task = schedule.periodic_task
        assert (task.task, task.queue, task.enabled) == ("jobs.run_schedule", "maintenance", True)
        assert json.loads(task.kwargs) == {"tenant_id": active_a.id, "key": schedule.key}
        crontab = task.crontab
        assert str(crontab.timezone) == "Europe/Paris"
        assert (crontab.day_of_week, crontab.day_of_month, crontab.month_of_year) == ("*",) * 3
        starts.append(int(crontab.hour) * 60 + int(crontab.minute))
    assert all(60 <= start < 300 for start in starts)  # 01:00–05:00
    assert abs(starts[0] - starts[1]) == 120  # the tenant's two nightly kinds, half a night apart


def test_ensuring_again_changes_nothing_and_keeps_edited_times(active_a):
    first = services.job_schedules_ensure_for_tenant(tenant=active_a)
    services.job_schedule_update(schedule=first[0], hour=3, minute=7, enabled=True)
    again = services.job_schedules_ensure_for_tenant(tenant=active_a)
    assert [s.pk for s in again] == [s.pk for s in first]
    edited = schedules_of(active_a)[0].periodic_task.crontab
    assert (edited.hour, edited.minute, str(edited.timezone)) == ("3", "7", "Europe/Paris")
    assert PeriodicTask.objects.filter(task="jobs.run_schedule").count() == 2


def test_the_night_is_shared_evenly_and_deterministically_between_tenants():
    slots = [services.nightly_slot(tenant_id=tenant_id) for tenant_id in range(1, 401)]
    assert slots == [services.nightly_slot(tenant_id=tenant_id) for tenant_id in range(1, 401)]
    assert all(1 <= hour <= 4 and 0 <= minute < 60 for hour, minute in slots)
    per_hour = Counter(hour for hour, _ in slots)
    assert set(per_hour) == {1, 2, 3, 4}
    assert max(per_hour.values()) - min(per_hour.values()) <= 4  # 100 ± 2 each
    # Neighbouring tenant ids never start together.
    assert all(slots[i] != slots[i + 1] for i in range(len(slots) - 1))


def test_leaving_active_pauses_the_schedules_and_returning_resumes_them(active_a):
    services.job_schedules_ensure_for_tenant(tenant=active_a)
    suspended = tenant_services.tenant_transition(tenant=active_a, to_status="suspended")
    services.job_schedules_sync_for_tenant(tenant=suspended)
    assert {s.periodic_task.enabled for s in schedules_of(active_a)} == {False}
    active = tenant_services.tenant_transition(tenant=suspended, to_status=TenantStatus.ACTIVE)
    services.job_schedules_sync_for_tenant(tenant=active)
    assert {s.periodic_task.enabled for s in schedules_of(active_a)} == {True}


def test_a_prospect_gets_no_schedules(tenant_b):
    assert services.job_schedules_sync_for_tenant(tenant=tenant_b) == []
    assert not PeriodicTask.objects.filter(task="jobs.run_schedule").exists()


def test_a_beat_tick_submits_one_run_even_if_delivered_twice(active_a, sent):
    schedule = services.job_schedules_ensure_for_tenant(tenant=active_a)[0]
    kwargs = {"tenant_id": active_a.id, "key": schedule.key}
    first = run_schedule.apply(kwargs=kwargs, task_id="tick-1").get()
    again = run_schedule.apply(kwargs=kwargs, task_id="tick-1").get()
    later = run_schedule.apply(kwargs=kwargs, task_id="tick-2").get()
    assert first == again != later
    with tenant_scope(active_a.id):
        run = JobRun.objects.get(pk=first)
    assert (run.trigger, run.schedule_id, run.kind) == ("schedule", schedule.pk, schedule.kind)
    assert run.triggered_by_label == f"schedule {schedule.key}"


def test_a_tick_for_a_tenant_no_longer_active_submits_nothing(active_a, sent):
    schedule = services.job_schedules_ensure_for_tenant(tenant=active_a)[0]
    tenant_services.tenant_transition(tenant=active_a, to_status="suspended")
    assert services.job_schedule_fire(tenant_id=active_a.id, key=schedule.key) is None


def test_a_manual_run_leaves_the_schedule_untouched(active_a, sent):
    schedule = services.job_schedules_ensure_for_tenant(tenant=active_a)[0]
    fields = ("crontab_id", "enabled", "last_run_at", "total_run_count", "date_changed", "kwargs")
    before = PeriodicTask.objects.filter(pk=schedule.periodic_task_id).values(*fields).get()
    staff = make_staff(active_a, username="eve")
    run = services.job_schedule_run_now(schedule=schedule, user=staff)
    after = PeriodicTask.objects.filter(pk=schedule.periodic_task_id).values(*fields).get()
    assert before == after
    assert (run.trigger, run.schedule_id, run.triggered_by_label) == (
        JobTrigger.USER,
        schedule.pk,
        "eve",
    )


def test_updating_a_schedule_validates_and_is_audited(active_a):
    from django.core.exceptions import ValidationError

    from tenants.models import AuditEvent

    schedule = services.job_schedules_ensure_for_tenant(tenant=active_a)[0]
    with pytest.raises(ValidationError):
        services.job_schedule_update(schedule=schedule, hour=25, minute=0, enabled=True)
    services.job_schedule_update(schedule=schedule, hour=2, minute=30, enabled=False)
    event = AuditEvent.objects.filter(object_type="jobs.JobSchedule", action="update").last()
    assert set(event.changes) == {"crontab", "enabled"}
