"""The estate page of the client portal: the tenant's own register, compute with GPU
utilisation sparklines from hourly rollups, the same 404 for foreign and missing tenants, and a
query count that does not grow with the estate."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from operations.inventory.portal import urls as estate_portal_urls
from operations.inventory.portal.views import gpu_utilisation_sparklines
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from tenants.models import TenantRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_member
from tests.inventory.estate import (
    make_ai_system,
    make_dataset,
    make_deployment,
    make_gpu_node,
    make_site,
    make_usage,
)
from tests.portal.svg import drawn_lines

pytestmark = pytest.mark.django_db


def estate_url(tenant) -> str:
    return reverse("portal_estate:overview", kwargs={"slug": tenant.slug})


def add_hourly_utilisation(tenant, compute, values: list[float]) -> None:
    """One rollup per hour, oldest first, ending with the current hour."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    code = METRICS_BY_NAME["gpu_utilization"].code
    with tenant_scope(tenant.id):
        TelemetryRollup.objects.bulk_create(
            TelemetryRollup(
                tenant=tenant,
                resource_kind=ResourceKind.COMPUTE,
                resource_id=compute.id,
                metric=code,
                bucket=now - dt.timedelta(hours=len(values) - 1 - index),
                min_value=value,
                max_value=value,
                avg_value=value,
                sample_count=60,
                computed_at=timezone.now(),
            )
            for index, value in enumerate(values)
        )


@pytest.fixture
def client_member(client, tenant_a):
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    return client


def test_every_estate_page_goes_through_the_portal_gate():
    for pattern in estate_portal_urls.urlpatterns:
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_the_estate_shows_the_tenants_own_register_and_nobody_elses(
    client_member, tenant_a, tenant_b
):
    site = make_site(tenant_a, code="lon-dc1", name="London DC")
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01", site=site)
    system = make_ai_system(tenant_a, name="Fraud scoring", risk_tier="high", stage="production")
    make_usage(tenant_a, ai_system=system, dataset=make_dataset(tenant_a, name="Card payments"))
    make_deployment(tenant_a, ai_system=system, compute=node, name="fraud-scoring-prod")
    make_ai_system(tenant_b, name="Borealis chatbot")
    make_gpu_node(tenant_b, hostname="borealis-gpu-01")

    response = client_member.get(estate_url(tenant_a))

    assert response.status_code == 200
    text = response.content.decode()
    for expected in ("lon-dc1", "acme-gpu-01", "Fraud scoring", "High risk", "Card payments"):
        assert expected in text
    assert "fraud-scoring-prod" in text
    assert "Borealis chatbot" not in text
    assert "borealis-gpu-01" not in text
    # A GPU node without telemetry says so rather than drawing an empty chart.
    assert "No telemetry in the last 72 h" in text


def test_another_tenants_estate_is_the_same_404_as_a_missing_one(client_member, tenant_b):
    foreign = client_member.get(estate_url(tenant_b))
    missing = client_member.get(reverse("portal_estate:overview", kwargs={"slug": "nope"}))
    assert foreign.status_code == missing.status_code == 404
    scrub = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub("", foreign.content.decode()) == scrub.sub("", missing.content.decode())
    assert "Borealis" not in foreign.content.decode()


def test_the_estate_is_read_only(client_member, tenant_a):
    assert client_member.post(estate_url(tenant_a)).status_code == 403


def test_staff_see_their_assigned_tenants_estate(client, engineer_a, tenant_a, tenant_b):
    make_ai_system(tenant_a, name="Forecasting")
    login_verified(client, engineer_a.user)
    assert "Forecasting" in client.get(estate_url(tenant_a)).content.decode()
    assert client.get(estate_url(tenant_b)).status_code == 404


def test_sparklines_come_from_the_tenants_hourly_rollups(tenant_a, tenant_b):
    node = make_gpu_node(tenant_a)
    add_hourly_utilisation(tenant_a, node, [0.0, 50.0, 100.0])
    other = make_gpu_node(tenant_b)
    add_hourly_utilisation(tenant_b, other, [99.0])

    with tenant_scope(tenant_a.id):
        lines = gpu_utilisation_sparklines(
            tenant=tenant_a, compute_ids=[node.id, other.id], hours=72
        )

    assert set(lines) == {node.id}
    line = lines[node.id]
    assert (line.average, line.latest, line.hours) == (50.0, 100.0, 3)
    ((bottom, middle, top),) = drawn_lines(line.chart.svg)
    # 0 % is drawn at the bottom of the box, 100 % at the top, 50 % half way.
    assert bottom[1] > middle[1] > top[1]
    assert middle[1] == pytest.approx((bottom[1] + top[1]) / 2)
    assert [row[1] for row in line.chart.table.rows] == ["0 %", "50 %", "100 %"]


def test_utilisation_older_than_the_window_is_left_out(tenant_a):
    node = make_gpu_node(tenant_a)
    add_hourly_utilisation(tenant_a, node, [90.0] + [0.0] * 80)
    with tenant_scope(tenant_a.id):
        line = gpu_utilisation_sparklines(tenant=tenant_a, compute_ids=[node.id], hours=72)[node.id]
    assert line.hours == 72
    assert line.average == 0.0


def test_the_page_shows_the_sparkline(client_member, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-idle-01")
    add_hourly_utilisation(tenant_a, node, [2.0, 4.0])
    text = client_member.get(estate_url(tenant_a)).content.decode()
    assert 'data-chart="sparkline"' in text
    assert "average 3.0 %, latest hour 4.0 %" in text
    assert "avg 3.0 % · now 4.0 %" in text


def test_the_page_runs_the_same_queries_for_a_small_and_a_large_estate(client_member, tenant_a):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_member.get(estate_url(tenant_a)).status_code == 200
        return len(captured)

    system = make_ai_system(tenant_a)
    make_deployment(tenant_a, ai_system=system, compute=make_gpu_node(tenant_a))
    small = queries()
    for _ in range(8):
        node = make_gpu_node(tenant_a, site=make_site(tenant_a))
        add_hourly_utilisation(tenant_a, node, [10.0, 20.0])
        system = make_ai_system(tenant_a)
        make_usage(tenant_a, ai_system=system)
        make_deployment(tenant_a, ai_system=system, compute=node)
    assert queries() == small
