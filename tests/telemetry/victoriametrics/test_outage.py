"""VictoriaMetrics out of reach: the telemetry routes answer 503 in the one error format (not
a 500) and store, learn and mark nothing; the pages that chart telemetry keep the rest of the
page and say telemetry is unavailable; no portal page answers a server error; the rollup job
and the alert evaluation leave their work for the next run, which does it once the store is
back.

"Out of reach" is ``TELEMETRY_URL`` on a port where nothing listens (connection refused); the
tests that need the store back switch it to the session's real VictoriaMetrics (``vm``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import socket

import pytest
from django.utils import timezone

from operations.incidents import tasks as incident_tasks
from operations.inventory.models import GpuDevice
from operations.jobs.models import JobStatus
from operations.jobs.services import job_submit
from operations.readiness import services as readiness
from operations.readiness.catalogue import readiness_frameworks_load
from operations.readiness.models import Assessment, AssessmentStatus, ReadinessScore
from operations.telemetry import tasks as telemetry_tasks
from operations.telemetry.exceptions import TelemetryUnavailable
from operations.telemetry.forwarding import telemetry_gpus_discover
from operations.telemetry.metrics import ResourceKind
from operations.telemetry.models import TelemetryRollup
from tenants.models import MspRole, TenantRole
from tenants.scoping import tenant_scope
from tenants.tasks import fleet_chunk
from tests.factories import (
    login_verified,
    make_gpu_device,
    make_member,
    make_staff,
    make_token,
)
from tests.incidents.alerting import alert_incidents, feed, make_rule
from tests.inventory.estate import gpu_uuid, make_gpu_node
from tests.jobs.conftest import eager, reload  # noqa: F401 - eager: a fixture
from tests.portal.walk import portal_estate, portal_routes, portal_urls
from tests.readiness.builders_core import question_keys
from tests.telemetry.helpers import code, dirty_hours, iso, minutes_ago, rollups, url
from tests.telemetry.remote_write_payloads import remote_write, snappy, write_request

pytestmark = pytest.mark.django_db

UNAVAILABLE = {
    "status": 503,
    "code": "service_unavailable",
    "message": "The telemetry store cannot be reached; try again shortly.",
}


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def unreachable(settings):
    """VictoriaMetrics configured on a port where nothing listens."""
    settings.TELEMETRY_BACKEND = "victoriametrics"
    settings.TELEMETRY_URL = _closed_port_url()
    settings.TELEMETRY_TIMEOUT_SECONDS = 2


class Outage:
    """The session's VictoriaMetrics, cut off (``down``) and back (``up``) by its URL."""

    def __init__(self, settings, url: str):
        self.settings, self.url = settings, url

    def down(self) -> None:
        self.settings.TELEMETRY_URL = _closed_port_url()

    def up(self) -> None:
        self.settings.TELEMETRY_URL = self.url


@pytest.fixture
def outage(vm, settings):
    settings.TELEMETRY_TIMEOUT_SECONDS = 2
    return Outage(settings, vm.url)


# --- The API --------------------------------------------------------------------------------


def test_ingest_answers_503_and_marks_nothing(unreachable, admin_a, tenant_a, estate):
    sample = {
        "resource": "compute:acme-gpu-sat-01",
        "metric": "gpu_utilization",
        "ts": iso(minutes_ago(1)),
        "value": 3.0,
    }
    response = admin_a.client.post(url(tenant_a, "samples"), {"samples": [sample]}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"] == UNAVAILABLE
    assert response["Retry-After"] == "5"
    assert dirty_hours(tenant_a) == set()


@pytest.mark.parametrize("gpu", [None, "0"])
def test_series_answers_503(unreachable, admin_a, tenant_a, estate, gpu):
    make_gpu_device(tenant_a, compute=estate["node"], index=0)
    params = {"resource": "compute:acme-gpu-sat-01", "metric": "gpu_utilization", "step": "raw"}
    response = admin_a.client.get(
        url(tenant_a, "series"), {**params, **({"gpu": gpu} if gpu else {})}
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"] == UNAVAILABLE
    assert response["Retry-After"] == "5"


def test_remote_write_answers_503_and_learns_stores_and_marks_nothing(outage, admin_a, tenant_a):
    """A forwarded batch naming a GPU not yet in the inventory is refused whole: nothing is
    learned, no hour is marked; sent again once the store is back, it is stored, and the GPU
    discovery job learns the GPU from it."""
    make_gpu_node(
        tenant_a, hostname="acme-gpu-learn-01", gpu_count=4, gpu_uuids=[gpu_uuid(), gpu_uuid()]
    )
    labels = {
        "__name__": "DCGM_FI_DEV_GPU_UTIL",
        "Hostname": "acme-gpu-learn-01",
        "gpu": "2",
        "UUID": gpu_uuid(),
    }
    body = snappy(write_request([(labels, [(55.0, int(minutes_ago(2).timestamp() * 1000))])]))
    with tenant_scope(tenant_a.id):
        gpus = GpuDevice.objects.count()

    outage.down()
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 503, response.content
    assert response.json()["error"] == UNAVAILABLE
    with tenant_scope(tenant_a.id):
        assert GpuDevice.objects.count() == gpus
    assert dirty_hours(tenant_a) == set()

    outage.up()
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 204, response.content
    with tenant_scope(tenant_a.id):
        assert telemetry_gpus_discover(tenant=tenant_a)["learned_gpus"] == 1
        assert GpuDevice.objects.count() == gpus + 1
    assert dirty_hours(tenant_a)


def test_alert_evaluation_on_demand_answers_503(unreachable, admin_a, tenant_a, estate):
    make_rule(tenant_a)
    response = admin_a.client.post(
        f"/api/v1/tenants/{tenant_a.slug}/alert-rules/evaluate/", {}, format="json"
    )
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    assert alert_incidents(tenant_a) == []


# --- Pages ----------------------------------------------------------------------------------


def _rollup_hours(tenant, resource_kind: int, resource_id: int, hours: int) -> None:
    """Hourly GPU utilisation rollups of the last ``hours`` hours (what the 7-day range draws)."""
    last = timezone.now().replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant.id):
        TelemetryRollup.objects.bulk_create(
            TelemetryRollup(
                tenant=tenant,
                resource_kind=resource_kind,
                resource_id=resource_id,
                metric=code("gpu_utilization"),
                bucket=last - dt.timedelta(hours=hour),
                min_value=40.0,
                max_value=60.0,
                avg_value=50.0,
                sample_count=12,
                computed_at=timezone.now(),
            )
            for hour in range(1, hours + 1)
        )


def test_the_resource_pages_keep_their_facts_and_say_telemetry_is_unavailable(
    unreachable, tenant_a, estate, client
):
    node, deployment = estate["node"], estate["deployment"]
    gpu = make_gpu_device(tenant_a, compute=node, index=0)
    _rollup_hours(tenant_a, ResourceKind.COMPUTE, node.pk, 48)
    _rollup_hours(tenant_a, ResourceKind.GPU, gpu.pk, 48)
    client.force_login(make_member(tenant_a, TenantRole.MEMBER, username="acme-outage-member"))
    compute_page = f"/portal/{tenant_a.slug}/estate/compute/{node.pk}/"

    page = client.get(compute_page)  # 24 hours: raw samples
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-telemetry-unavailable" in html
    assert "data-metric=" not in html  # no empty chart pretending there is no data
    assert node.hostname in html
    assert "Open incidents" in html
    assert "data-gpu-telemetry-unavailable" in html  # the GPU table's raw-window columns
    # Each of them says so in its cell (hottest, XID, last report), not "—" as for no data.
    row = re.search(rf'<tr data-gpu="{gpu.pk}">.*?</tr>', html, re.S).group(0)
    assert row.count("data-gpu-cell-unavailable") == 3
    assert "—" not in row.split("</td>", 3)[-1]
    assert f'data-gpu-chart="{gpu.pk}"' in html  # its hourly means still drawn

    page = client.get(compute_page, {"range": "7d"})  # hourly rollups, in the database
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-telemetry-unavailable" not in html
    assert 'data-metric="gpu_utilization"' in html
    assert "data-gpu-telemetry-unavailable" in html

    page = client.get(f"/portal/{tenant_a.slug}/estate/deployments/{deployment.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "data-telemetry-unavailable" in html
    assert deployment.name in html


def test_every_portal_page_answers_without_a_server_error(unreachable, tenant_a, client):
    """Every page under /portal/ (enumerated from the URL resolver), its parameters filled from
    an estate with a GPU node, as a verified MSP admin: a page or a redirect, never a 5xx."""
    member = make_member(tenant_a, TenantRole.MEMBER, username="acme-walk-member")
    make_token(member)
    node = make_gpu_node(tenant_a, hostname="acme-gpu-walk-01")
    estate = portal_estate(tenant_a, member=member, compute=node)
    login_verified(client, make_staff(role=MspRole.ADMIN, username="msp-walk-admin"))
    answered = {}
    for route, view in portal_routes():
        for page in portal_urls(route, view, estate):
            answered[page] = client.get(page).status_code
    assert len(answered) > 30
    assert {page: status for page, status in answered.items() if status >= 500} == {}


def test_a_page_reading_raw_telemetry_without_a_view_of_its_own_answers_the_503_page(
    unreachable, tenant_a, estate, client
):
    """Submitting a readiness assessment scores it at once, and the coverage signal reads
    telemetry: the 503 page says so (not a 500), and the submission is not half-kept."""
    readiness_frameworks_load()
    admin = make_member(tenant_a, TenantRole.ADMIN, username="acme-outage-admin")
    with tenant_scope(tenant_a.id):
        draft = readiness.assessment_start(tenant=tenant_a, user=admin)
        for key in question_keys(draft.framework):
            readiness.assessment_answer(
                tenant=tenant_a, assessment=draft, question_key=key, value=3, user=admin
            )
    client.force_login(admin)
    client.raise_request_exception = False  # answer as a server would

    response = client.post(
        f"/portal/{tenant_a.slug}/readiness/assessment/submit/", {"confirm": "on"}
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "The telemetry store cannot be reached" in response.content.decode()
    with tenant_scope(tenant_a.id):
        assert Assessment.objects.get(pk=draft.pk).status == AssessmentStatus.DRAFT
        assert not ReadinessScore.objects.exists()


# --- Scheduled work -------------------------------------------------------------------------


def test_the_rollup_job_keeps_its_hours_while_the_store_is_down_and_rolls_them_up_after(
    outage, tenant_a, estate, caplog
):
    hour = minutes_ago(90).replace(minute=0, second=0)
    feed(
        tenant_a,
        "compute:acme-gpu-sat-01",
        "gpu_utilization",
        [10, 20],
        start=hour + dt.timedelta(minutes=5),
    )
    marked = dirty_hours(tenant_a)
    assert marked

    outage.down()
    with pytest.raises(TelemetryUnavailable):
        telemetry_tasks.rollup_tenant(tenant_id=tenant_a.id)
    assert dirty_hours(tenant_a) == marked  # left for the next run
    assert rollups(tenant_a) == []
    # The fleet chunk says so in one line, without a traceback per tenant.
    caplog.set_level(logging.WARNING, logger="tenants.tasks")
    result = fleet_chunk(task="telemetry.rollup_tenant", tenant_ids=[tenant_a.id])
    assert result["failed"] == [tenant_a.id]
    assert [r.exc_info for r in caplog.records if r.name == "tenants.tasks"] == [None]
    assert dirty_hours(tenant_a) == marked

    outage.up()
    assert telemetry_tasks.rollup_tenant(tenant_id=tenant_a.id)["rollups"] == 1
    assert dirty_hours(tenant_a) == set()
    assert [row[4:] for row in rollups(tenant_a)] == [(10.0, 20.0, 15.0, 2)]


def test_alert_evaluation_writes_nothing_while_the_store_is_down_and_fires_when_it_is_back(
    outage, tenant_a, estate
):
    make_rule(tenant_a)  # above 90 % for 15 minutes
    feed(
        tenant_a,
        "compute:acme-gpu-sat-01",
        "gpu_utilization",
        [95, 96, 97, 98],
        start=minutes_ago(19),
    )

    outage.down()
    with pytest.raises(TelemetryUnavailable):
        incident_tasks.alert_rules_evaluate_tenant(tenant_id=tenant_a.id)
    assert alert_incidents(tenant_a) == []

    outage.up()
    assert incident_tasks.alert_rules_evaluate_tenant(tenant_id=tenant_a.id)["opened"] == 1
    assert len(alert_incidents(tenant_a)) == 1


@pytest.mark.usefixtures("eager")
def test_a_readiness_scan_is_retried_not_failed_while_the_store_is_down(
    unreachable, tenant_a, estate, django_capture_on_commit_callbacks
):
    """The scan's coverage signal reads telemetry: each attempt is a transient error (retried
    with backoff), and no snapshot is written without the signal."""
    with django_capture_on_commit_callbacks(execute=True):
        run = job_submit(tenant=tenant_a, kind="readiness_scan")
    run = reload(run)
    assert (run.status, run.attempts) == (JobStatus.FAILED, run.max_attempts)
    assert run.max_attempts > 1
    assert "telemetry store cannot be reached" in run.error
    assert "transient; gave up" in run.error
    with tenant_scope(tenant_a.id):
        assert not ReadinessScore.objects.exists()


def test_forwarded_scrapes_answer_503(unreachable, admin_a, tenant_a, estate):
    from tests.telemetry.remote_write_payloads import remote_write, snappy, write_request
    from tests.telemetry.test_prometheus import push

    response = push(admin_a, tenant_a, 'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="h"} 1\n')
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
    body = snappy(write_request([({"__name__": "DCGM_FI_DEV_GPU_UTIL"}, [(1.0, 0)])]))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "service_unavailable"
