"""Reports are made by the job engine: a run per tenant and period with progress and a log,
the monthly schedule's fan-out (tenant time zones, once per month), re-runs of past months."""

from __future__ import annotations

import datetime as dt

import pytest

from operations.jobs import services as job_services
from operations.jobs.models import JobRun
from operations.reports import services
from operations.reports.models import Report
from tenants.models import ServicePlan
from tenants.scoping import tenant_scope
from tests.jobs.conftest import activate, deliver, logs_of, reload

pytestmark = pytest.mark.django_db


def reports_of(tenant) -> list[tuple]:
    with tenant_scope(tenant.id):
        return list(Report.objects.order_by("pk").values_list("period_label", "version", "status"))


def test_a_run_makes_the_report_of_the_month_asked_with_progress_and_a_log(
    tenant_a, tenant_b, sent
):
    run = job_services.job_submit(
        tenant=tenant_a, kind="monthly_service_report", parameters={"period": "2026-03"}
    )
    assert deliver(run) == "succeeded"
    run = reload(run)
    assert run.progress == 100
    assert run.result["period"] == "2026-03"
    assert run.result["version"] == 1
    assert any("March 2026" in line for line in logs_of(run))
    assert reports_of(tenant_a) == [("2026-03", 1, "published")]
    assert reports_of(tenant_b) == []
    # A redelivered message for the finished run records nothing more.
    assert deliver(run) == "already finished"
    again = job_services.job_submit(
        tenant=tenant_a, kind="monthly_service_report", parameters={"period": "2026-03"}
    )
    assert deliver(again) == "succeeded"
    assert reports_of(tenant_a) == [("2026-03", 1, "published"), ("2026-03", 2, "published")]


def test_the_schedule_submits_last_month_once_per_active_tenant_in_its_time_zone(
    tenant_a, tenant_b, sent
):
    tenant_a = activate(tenant_a)
    tenant_b = activate(tenant_b)
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="Pacific/Auckland")
    ServicePlan.objects.filter(tenant=tenant_b).update(timezone="America/Los_Angeles")
    # At 30 Nov 14:00 UTC it is already 1 December in Auckland, still 30 November in LA.
    moment = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
    first = services.reports_schedule_monthly(now=moment)
    assert len(first) == 1
    with tenant_scope(tenant_a.id):
        (run,) = JobRun.objects.filter(kind="monthly_service_report")
    assert run.parameters == {"period": "2026-11"}
    with tenant_scope(tenant_b.id):
        assert not JobRun.objects.filter(kind="monthly_service_report").exists()
    # The next hourly tick coalesces into the same run; later LA reaches 1 December.
    assert services.reports_schedule_monthly(now=moment + dt.timedelta(hours=1)) == first
    later = services.reports_schedule_monthly(now=moment + dt.timedelta(hours=19))
    assert len(later) == 2
    with tenant_scope(tenant_b.id):
        (run_b,) = JobRun.objects.filter(kind="monthly_service_report")
    assert run_b.parameters == {"period": "2026-11"}


def test_a_tenant_with_the_months_report_already_is_not_submitted_again(tenant_a, sent):
    tenant_a = activate(tenant_a)
    moment = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    (run_id,) = services.reports_schedule_monthly(now=moment)
    with tenant_scope(tenant_a.id):
        run = JobRun.objects.get(pk=run_id)
    assert deliver(run) == "succeeded"
    assert services.reports_schedule_monthly(now=moment + dt.timedelta(days=1)) == []


def test_asking_for_a_month_that_has_not_ended_is_refused(tenant_a, sent):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        services.report_request(tenant=tenant_a, kind="monthly", period_label="2999-01")
    assert "period" in error.value.message_dict
    with pytest.raises(ValidationError):
        services.report_request(tenant=tenant_a, kind="monthly", period_label="2026-13")
