"""A resource's page in the client portal: its facts, one chart per metric with data over the
chosen range (raw samples for 6 h and 24 h, hourly rollups with their range for 7 d and 30 d),
times in the viewer's zone, open incidents and recommendations about it, the same 404 for a
foreign and a missing resource, and queries that do not grow with the telemetry."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from operations.incidents.models import Incident
from operations.inventory.portal import urls as estate_urls
from tenants.models import ServicePlan, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.incidents.factories import make_incident
from tests.inventory.estate import make_deployment, make_gpu_node
from tests.optimisation.helpers import feed, this_hour
from tests.optimisation.test_api import make_recommendation

pytestmark = pytest.mark.django_db


def compute_url(tenant, pk, **params) -> str:
    url = reverse("portal_estate:compute", kwargs={"slug": tenant.slug, "pk": pk})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def deployment_url(tenant, pk) -> str:
    return reverse("portal_estate:deployment", kwargs={"slug": tenant.slug, "pk": pk})


@pytest.fixture
def viewer(client, tenant_a):
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="America/New_York")
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    return client


def text_of(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def metric_block(text: str, metric: str) -> str:
    return re.search(rf'data-metric="{metric}" data-step="([^"]+)">(.*?)</figure>', text, re.S)


def test_every_estate_route_goes_through_the_portal_gate():
    assert all(getattr(p.callback, "portal_tenant_view", False) for p in estate_urls.urlpatterns)


def test_a_node_shows_its_facts_and_a_chart_per_metric_in_the_viewers_zone(viewer, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01", gpu_count=8, gpu_model="NVIDIA H100")
    end = this_hour()
    feed(tenant_a, "compute:acme-gpu-01", "gpu_utilization", end - dt.timedelta(hours=4), end, 37.5)
    text = text_of(viewer.get(compute_url(tenant_a, node.pk, range="6h")))

    assert "8 × NVIDIA H100" in text
    found = metric_block(text, "gpu_utilization")
    assert found.group(1) == "raw"
    block = found.group(2)
    assert "All 8 GPUs (mean)" in block
    assert "Time (America/New_York)" in block  # the x axis, in the tenant's zone
    # The y axis with its unit; pygal wraps a title that outgrows the plot's height (dates on
    # a 6-hour range that crosses midnight in the tenant's zone tilt the x labels) into lines.
    y_title = re.findall(r'class="title" transform="rotate\(-90[^"]*">([^<]*)</text>', block)
    assert " ".join(y_title) == "GPU utilisation (%)"
    rows = re.findall(r"<tr><th scope=\"row\">([^<]*)</th><td class=\"num\">([^<]*)</td>", block)
    assert len(rows) == 4
    assert {value for _time, value in rows} == {"37.5 %"}
    assert all(time.endswith(("EST", "EDT")) for time, _value in rows)
    # Metrics without data are named, not drawn as empty charts.
    assert 'data-metric="gpu_power_watts"' not in text
    silent = re.search(r"No data in this range for: ([^<]*)", text).group(1)
    assert "Power draw, all GPUs" in silent
    assert "GPU utilisation" not in silent


def test_the_longer_ranges_read_hourly_rollups_with_each_hours_range(viewer, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    end = this_hour()
    feed(tenant_a, "compute:acme-gpu-01", "gpu_utilization", end - dt.timedelta(hours=48), end, 50)
    for key in ("7d", "30d"):
        text = text_of(viewer.get(compute_url(tenant_a, node.pk, range=key)))
        found = metric_block(text, "gpu_utilization")
        assert found.group(1) == "1h"
        assert "Hourly range: low" in found.group(2)
        assert 'aria-current="page">' + {"7d": "7 days", "30d": "30 days"}[key] in text
    # An unknown range falls back to 24 hours rather than failing.
    text = text_of(viewer.get(compute_url(tenant_a, node.pk, range="5y")))
    assert 'aria-current="page">24 hours' in text


def test_a_resource_lists_its_open_incidents_and_recommendations(viewer, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    other = make_gpu_node(tenant_a, hostname="acme-gpu-02")
    about = make_incident(
        tenant_a, title="GPU saturated on acme-gpu-01", severity="SEV2", compute=[node]
    )
    make_incident(tenant_a, title="Something on acme-gpu-02", compute=[other])
    make_recommendation(
        tenant_a, 1, subject_id=node.pk, subject_key=f"compute:{node.pk}", title="Release it"
    )
    make_recommendation(tenant_a, 2, subject_id=other.pk, subject_key=f"compute:{other.pk}")
    text = text_of(viewer.get(compute_url(tenant_a, node.pk)))
    assert "GPU saturated on acme-gpu-01" in text
    assert "Something on acme-gpu-02" not in text
    assert "Release it" in text
    assert "node-2 is idle" not in text
    with tenant_scope(tenant_a.id):
        Incident.objects.filter(pk=about.pk).update(status="resolved")
    assert "GPU saturated" not in text_of(viewer.get(compute_url(tenant_a, node.pk)))


def test_a_deployment_page_charts_its_metrics(viewer, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    deployment = make_deployment(tenant_a, compute=node, name="fraud-scoring-prod")
    end = this_hour()
    start = end - dt.timedelta(hours=3)
    feed(tenant_a, "deployment:fraud-scoring-prod", "inference_latency_p95_ms", start, end, 180)
    text = text_of(viewer.get(deployment_url(tenant_a, deployment.pk)))
    block = metric_block(text, "inference_latency_p95_ms").group(2)
    assert "Latency p95 (ms)" in block
    assert "180 ms" in block
    assert 'data-metric="gpu_utilization"' not in text


def test_foreign_and_missing_resources_are_the_same_404(viewer, tenant_a, tenant_b):
    foreign = make_gpu_node(tenant_b, hostname="borealis-gpu-01")
    foreign_deployment = make_deployment(tenant_b, compute=foreign, name="borealis-chat")
    pages = [
        viewer.get(compute_url(tenant_a, foreign.pk)),
        viewer.get(compute_url(tenant_a, 987654)),
        viewer.get(compute_url(tenant_b, foreign.pk)),
        viewer.get(deployment_url(tenant_a, foreign_deployment.pk)),
        viewer.get(deployment_url(tenant_a, 987654)),
        viewer.get(deployment_url(tenant_b, foreign_deployment.pk)),
    ]
    assert {page.status_code for page in pages} == {404}
    scrub = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    bodies = {scrub.sub("", page.content.decode()) for page in pages}
    assert len(bodies) == 1
    assert "borealis" not in bodies.pop()


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_runs_the_same_queries_whatever_the_telemetry(viewer, tenant_a):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-01")
    end = this_hour()
    feed(tenant_a, "compute:acme-gpu-01", "gpu_utilization", end - dt.timedelta(hours=2), end, 10)
    few = {key: _queries(viewer, compute_url(tenant_a, node.pk, range=key)) for key in ("6h", "7d")}
    start = end - dt.timedelta(hours=150)
    for metric in ("gpu_utilization", "gpu_power_watts", "gpu_temperature_celsius"):
        feed(tenant_a, "compute:acme-gpu-01", metric, start, end, 42)
    many = {
        key: _queries(viewer, compute_url(tenant_a, node.pk, range=key)) for key in ("6h", "7d")
    }
    assert few == many
