"""Jobs in the admin: who sees which runs, progress bars, logs, actions, schedules, outbox."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from operations.jobs import services
from operations.jobs.models import JobDispatch, JobRun, JobStatus
from operations.jobs.registry import JobKind, register_job_kind, unregister_job_kind
from tenants.models import AuditEvent, MspRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_staff
from tests.jobs.conftest import activate, reload

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def text(response) -> str:
    return html.unescape(response.content.decode())


def action(client, model: str, name: str, objects):
    return client.post(
        url(f"jobs_{model}_changelist"),
        {"action": name, "_selected_action": [obj.pk for obj in objects], "index": 0},
        follow=True,
    )


@pytest.fixture
def boss(client, db):
    user = make_staff(role=MspRole.ADMIN, username="boss")
    login_verified(client, user)
    return user


@pytest.fixture
def engineer(client, tenant_a):
    user = make_staff(tenant_a, role=MspRole.ENGINEER, username="engineer")
    login_verified(client, user)
    return user


@pytest.fixture
def runs(tenant_a, tenant_b, sent):
    return {
        "a": services.job_submit(tenant=tenant_a, kind="noop"),
        "b": services.job_submit(tenant=tenant_b, kind="noop"),
        "fleet": services.job_submit_fleet(kind="test_tenant_echo"),
    }


def test_msp_admin_sees_tenant_and_fleet_runs_with_progress_bars(client, boss, runs):
    response = client.get(url("jobs_jobrun_changelist"))
    assert response.status_code == 200
    shown = {row.pk for row in response.context["cl"].result_list}
    assert shown == {runs["a"].pk, runs["b"].pk, runs["fleet"].pk}
    assert '<progress value="0" max="100"' in response.content.decode()
    assert "— fleet —" in text(response)


def test_an_engineer_sees_only_assigned_tenants_runs(client, engineer, runs):
    response = client.get(url("jobs_jobrun_changelist"))
    assert {row.pk for row in response.context["cl"].result_list} == {runs["a"].pk}
    assert client.get(url("jobs_jobrun_change", runs["b"].pk)).status_code == 302  # not found
    assert client.get(url("jobs_jobrun_change", runs["fleet"].pk)).status_code == 302


def test_the_run_page_shows_logs_and_the_traceback(client, boss, tenant_a, eager, committed):
    with committed():
        run = services.job_submit(tenant=tenant_a, kind="test_failing")
    page = text(client.get(url("jobs_jobrun_change", run.pk)))
    assert "About to fail" in page
    assert "[attempt 1] About to fail" in page
    assert "raise ValueError" in page  # staff see the traceback


def test_run_again_and_cancel_actions(client, engineer, runs, tenant_a):
    response = action(client, "jobrun", "run_again", [runs["a"]])
    assert "Queued 1 new run(s)." in text(response)
    with tenant_scope(tenant_a.id):
        again = JobRun.objects.exclude(pk=runs["a"].pk).get()
    assert (again.trigger, again.triggered_by_label) == ("user", "engineer")

    action(client, "jobrun", "cancel_runs", [runs["a"]])
    assert reload(runs["a"]).status == JobStatus.CANCELLED
    event = AuditEvent.objects.filter(object_type="jobs.JobRun", action="transition").get()
    assert (event.source, event.actor_label) == ("admin", "engineer")


def test_only_msp_admins_start_fleet_runs(client, engineer, runs):
    response = action(client, "jobrun", "run_fleet_wide", [runs["a"]])
    assert JobRun.fleet.count() == 1  # the action is not offered to an engineer
    assert response.status_code == 200


def test_analysts_look_but_cannot_act(client, tenant_a, runs):
    login_verified(client, make_staff(tenant_a, role=MspRole.ANALYST, username="analyst"))
    assert client.get(url("jobs_jobrun_changelist")).status_code == 200
    action(client, "jobrun", "cancel_runs", [runs["a"]])
    assert reload(runs["a"]).status == JobStatus.QUEUED


@pytest.fixture
def nightly():
    register_job_kind(JobKind(name="test_nightly", func=lambda run, p: {}, nightly=True))
    yield
    unregister_job_kind("test_nightly")


def test_a_schedule_is_edited_and_run_now_from_the_admin(client, engineer, tenant_a, nightly, sent):
    schedule = services.job_schedules_ensure_for_tenant(tenant=activate(tenant_a))[0]
    page = client.get(url("jobs_jobschedule_change", schedule.pk))
    assert page.status_code == 200
    response = client.post(
        url("jobs_jobschedule_change", schedule.pk), {"hour": 4, "minute": 45}, follow=True
    )
    assert response.status_code == 200
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("4", "45", False)

    before = PeriodicTask.objects.filter(pk=task.pk).values().get()
    action(client, "jobschedule", "run_now", [schedule])
    assert PeriodicTask.objects.filter(pk=task.pk).values().get() == before
    with tenant_scope(tenant_a.id):
        run = JobRun.objects.get(schedule=schedule)
    assert (run.trigger, run.triggered_by_label) == ("user", "engineer")

    action(client, "jobschedule", "resume", [schedule])
    assert PeriodicTask.objects.get(pk=task.pk).enabled is True


def test_the_outbox_is_for_msp_admins_only(client, tenant_a, sent):
    services.job_submit(tenant=tenant_a, kind="noop")  # its transaction never commits here
    login_verified(client, make_staff(tenant_a, role=MspRole.ENGINEER, username="engineer"))
    assert client.get(url("jobs_jobdispatch_changelist")).status_code == 403
    login_verified(client, make_staff(role=MspRole.ADMIN, username="boss"))
    response = client.get(url("jobs_jobdispatch_changelist"))
    assert response.status_code == 200
    action(client, "jobdispatch", "send_now", JobDispatch.objects.all())
    assert not JobDispatch.objects.exists()
    assert len(sent) == 1


def test_runs_are_listed_newest_first_and_results_render_as_tables(client, boss, tenant_a, sent):
    first = services.job_submit(tenant=tenant_a, kind="noop")
    second = services.job_submit(tenant=tenant_a, kind="noop")
    with tenant_scope(tenant_a.id):
        # Same instant: the id still orders them.
        JobRun.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=first.created_at)
        JobRun.objects.filter(pk=second.pk).update(
            result={
                "checks": 3,
                "frameworks": [
                    {"code": "eu-ai-act", "score": 80},
                    {"code": "<b>iso</b>", "score": 55},
                ],
            }
        )
    listed = [row.pk for row in client.get(url("jobs_jobrun_changelist")).context["cl"].result_list]
    assert listed.index(second.pk) < listed.index(first.pk)

    page = client.get(url("jobs_jobrun_change", second.pk)).content.decode()
    assert '<th scope="row">Checks</th><td>3</td>' in page
    assert '<th scope="col">Code</th><th scope="col">Score</th>' in page
    assert "<td>&lt;b&gt;iso&lt;/b&gt;</td><td>55</td>" in page  # escaped, never markup
