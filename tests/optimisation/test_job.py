"""The ``optimisation_scan`` job kind through the engine: parameters, a nightly schedule, and
the effect once even when a worker dies after the scan committed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from operations.jobs import services as jobs
from operations.jobs.execution import JobContext, claim
from operations.jobs.models import JobSchedule
from operations.jobs.registry import get_job_kind, nightly_job_kinds
from operations.optimisation.models import RecommendationKind
from tenants.scoping import tenant_scope
from tests.inventory.estate import make_gpu_node
from tests.jobs.conftest import deliver, expire_lease, reload
from tests.optimisation.helpers import by_kind, feed_gpu

pytestmark = pytest.mark.django_db


@pytest.fixture
def idle(tenant_a):
    node = make_gpu_node(tenant_a, hostname="a-idle")
    feed_gpu(tenant_a, node, utilisation=7)
    return node


def test_the_scan_runs_as_a_job_with_per_run_thresholds(tenant_a, idle):
    run = jobs.job_submit(tenant=tenant_a, kind="optimisation_scan")
    assert deliver(run) == "succeeded"
    assert reload(run).result["found"] == 0  # 7 % is above the default 5 %

    run = jobs.job_submit(
        tenant=tenant_a, kind="optimisation_scan", parameters={"idle_utilisation": 10}
    )
    assert deliver(run) == "succeeded"
    finished = reload(run)
    assert finished.result["created"] == 1
    assert finished.result["found_by_kind"] == {"idle_gpu": 1}
    assert len(by_kind(tenant_a, RecommendationKind.IDLE_GPU)) == 1


def test_as_of_moves_the_scan_into_the_past(tenant_a, idle):
    # A week ago the window held no telemetry: nothing to find then.
    as_of = (timezone.now() - dt.timedelta(days=7)).isoformat()
    run = jobs.job_submit(
        tenant=tenant_a,
        kind="optimisation_scan",
        parameters={"idle_utilisation": 10, "as_of": as_of},
    )
    assert deliver(run) == "succeeded"
    assert reload(run).result["found"] == 0
    assert by_kind(tenant_a, RecommendationKind.IDLE_GPU) == []


def test_bad_parameters_are_refused_naming_the_field(tenant_a):
    with pytest.raises(ValidationError) as error:
        jobs.job_submit(tenant=tenant_a, kind="optimisation_scan", parameters={"saturation": 0})
    assert "parameters.saturation" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        jobs.job_submit(tenant=tenant_a, kind="optimisation_scan", parameters={"bogus": 1})
    assert "parameters.bogus" in error.value.message_dict


def test_the_scan_is_a_nightly_kind(tenant_a):
    assert get_job_kind("optimisation_scan") in nightly_job_kinds()
    jobs.job_schedules_ensure_for_tenant(tenant=tenant_a)
    with tenant_scope(tenant_a.id):
        assert JobSchedule.objects.filter(key="nightly:optimisation_scan").exists()


def test_a_worker_lost_after_the_scan_committed_does_not_scan_again(tenant_a, idle):
    run = jobs.job_submit(
        tenant=tenant_a, kind="optimisation_scan", parameters={"idle_utilisation": 10}
    )
    # The first worker claims the run, commits the scan with its checkpoint, and dies.
    claimed, ok = claim(run_id=run.pk, tenant_id=tenant_a.id, task_id=str(run.task_id))
    assert ok
    kind = get_job_kind("optimisation_scan")
    context = JobContext(claimed, kind)
    first = kind.func(context, dict(claimed.parameters))
    [rec] = by_kind(tenant_a, RecommendationKind.IDLE_GPU)
    expire_lease(run)

    # The redelivery takes over: the stored result is reused, nothing is scanned again.
    assert deliver(run) == "succeeded"
    [again] = by_kind(tenant_a, RecommendationKind.IDLE_GPU)
    assert again.refreshed_at == rec.refreshed_at
    finished = reload(run)
    assert finished.attempts == 2
    assert finished.result["created"] == first["created"] == 1
    # A redelivery of the finished run does nothing at all.
    assert deliver(run) != "succeeded"
    assert by_kind(tenant_a, RecommendationKind.IDLE_GPU)[0].refreshed_at == rec.refreshed_at


def test_every_threshold_is_a_parameter():
    from dataclasses import fields

    from operations.optimisation.conf import Thresholds

    parameters = set(get_job_kind("optimisation_scan").parameter_fields())
    assert {f.name for f in fields(Thresholds)} - {"currency"} <= parameters
