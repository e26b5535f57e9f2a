"""A node's page per GPU: a small utilisation chart per GPU (axes, unit, values as text) and a
table of its GPUs (UUID, utilisation, hottest temperature, highest XID error code), the
recommendations about its GPUs, queries that grow with neither GPUs nor samples, and never
another tenant's GPUs."""

from __future__ import annotations

import datetime as dt
import html
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tenants.models import ServicePlan, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.inventory.estate import make_gpu_node
from tests.optimisation.helpers import hours_between, scan, this_hour
from tests.telemetry.gpu_samples import make_node_gpus, store_gpu_hours, store_gpu_samples

pytestmark = pytest.mark.django_db

UUID_2 = "GPU-5c1f8a4e-0d3b-4a55-9a0e-2f6a3c7d9b10"


def compute_url(tenant, pk, **params) -> str:
    url = reverse("portal_estate:compute", kwargs={"slug": tenant.slug, "pk": pk})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


@pytest.fixture
def viewer(client, tenant_a):
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="America/New_York")
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    return client


def text_of(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def gpu_table(text: str) -> dict[str, list[str]]:
    """{GPU label: its cells as text}."""
    table = re.search(r'<table class="table" id="gpu-table">(.*?)</table>', text, re.S).group(1)
    rows = {}
    for label, cells in re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', table, re.S):
        rows[label] = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)
        ]
    return rows


def node_reporting(tenant, hostname="acme-gpu-01", gpu_count=4):
    """A node whose GPU i ran at 20·(i+1) % for the last five hours, at 60 °C but GPU 2 at
    83 °C, and GPU 3 reported XID 79 once."""
    node = make_gpu_node(tenant, hostname=hostname, gpu_count=gpu_count, gpu_uuids=[])
    gpus = make_node_gpus(tenant, node)
    if len(gpus) > 2:
        with tenant_scope(tenant.id):
            gpus[2].uuid = UUID_2
            gpus[2].save(update_fields=["uuid"])
    end = this_hour()
    hours = list(hours_between(end - dt.timedelta(hours=5), end))
    recent = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=50)
    for gpu in gpus:
        store_gpu_hours(tenant, gpu, "gpu_utilization", hours, 20 * (gpu.index + 1))
        temperature = [83.0 if gpu.index == 2 else 60.0] * 4
        store_gpu_samples(tenant, gpu, "gpu_temperature_celsius", temperature, start=recent)
        xid = [0.0, 79.0, 0.0] if gpu.index == 3 else [0.0, 0.0, 0.0]
        store_gpu_samples(tenant, gpu, "gpu_xid_errors", xid, start=recent)
    return node, gpus


def test_a_node_shows_a_small_chart_and_a_table_row_per_gpu(viewer, tenant_a):
    node, _gpus = node_reporting(tenant_a)
    text = text_of(viewer.get(compute_url(tenant_a, node.pk, range="24h")))

    rows = gpu_table(text)
    assert list(rows) == ["GPU 0", "GPU 1", "GPU 2", "GPU 3"]
    assert rows["GPU 0"][:4] == ["—", "20.0", "20.0", "60"]
    assert rows["GPU 2"][:4] == [UUID_2, "60.0", "60.0", "83"]
    assert rows["GPU 3"][4] == "XID 79"
    assert rows["GPU 0"][4] == "None"
    assert all(cells[5].endswith(("EST", "EDT")) for cells in rows.values())  # the viewer's zone
    assert 'class="badge badge--xid">XID 79' in text

    charts = re.findall(r'data-gpu-chart="\d+">(.*?)</figure>', text, re.S)
    assert len(charts) == 4
    for index, chart in enumerate(charts):
        assert f"GPU {index}: utilisation, hourly means" in chart
        drawn = re.sub(r"<[^>]+>", " ", chart)
        assert re.search(r"Utilisation\s+\(%\)", drawn)  # the y axis and its unit
        assert "Time (America/New_York)" in chart  # the x axis in the viewer's zone
        assert "Values as text" in chart
        values = re.findall(r'<td class="num">([^<]*)</td>', chart)
        assert set(values) == {f"{20 * (index + 1)} %"}, values


def test_a_gpu_with_nothing_in_the_range_says_so_and_a_node_without_gpus_has_no_section(
    viewer, tenant_a
):
    node = make_gpu_node(tenant_a, hostname="acme-gpu-quiet", gpu_count=2, gpu_uuids=[])
    make_node_gpus(tenant_a, node)
    text = text_of(viewer.get(compute_url(tenant_a, node.pk)))
    rows = gpu_table(text)
    assert [cells[-1] for cells in rows.values()] == ["No data in this range"] * 2
    assert "data-gpu-chart" not in text  # no empty charts

    bare = make_gpu_node(tenant_a, hostname="acme-gpu-bare", gpu_uuids=[])
    assert 'id="gpus"' not in text_of(viewer.get(compute_url(tenant_a, bare.pk)))


def test_the_recommendations_about_its_gpus_show_on_the_node(viewer, tenant_a):
    from tests.optimisation.test_idle_gpu_on_busy_node import node_with_gpus

    node, _gpus = node_with_gpus(tenant_a, "acme-gpu-busy", {0: 80, 1: 1, 2: 80, 3: 80})
    scan(tenant_a)
    text = text_of(viewer.get(compute_url(tenant_a, node.pk)))
    assert "Idle GPU on a busy node" in text
    assert "acme-gpu-busy GPU 1 is idle" in text


def test_a_node_never_shows_another_tenants_gpus(viewer, tenant_a, tenant_b):
    node, _gpus = node_reporting(tenant_a, gpu_count=2)
    node_reporting(tenant_b, hostname="acme-gpu-01", gpu_count=4)  # same name, other tenant
    text = text_of(viewer.get(compute_url(tenant_a, node.pk)))
    assert list(gpu_table(text)) == ["GPU 0", "GPU 1"]
    assert UUID_2 not in text  # tenant A's GPU 2 does not exist; B's is not shown


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_runs_the_same_queries_whatever_the_gpus_and_samples(viewer, tenant_a):
    small, _gpus = node_reporting(tenant_a, hostname="acme-gpu-small", gpu_count=2)
    large, _gpus = node_reporting(tenant_a, hostname="acme-gpu-large", gpu_count=8)
    for key in ("6h", "7d"):
        assert _queries(viewer, compute_url(tenant_a, small.pk, range=key)) == _queries(
            viewer, compute_url(tenant_a, large.pk, range=key)
        )


def test_gpu_series_shorter_than_the_range_say_where_they_begin(viewer, tenant_a):
    """Five hours of per-GPU means on a 24-hour page: the GPU section says from when its figures
    are (the node's own charts reach further back); on the 6-hour page they fill the range and
    nothing is said."""
    node, _gpus = node_reporting(tenant_a)
    first = (this_hour() - dt.timedelta(hours=5)).astimezone(ZoneInfo("America/New_York"))
    text = text_of(viewer.get(compute_url(tenant_a, node.pk)))
    note = re.search(r"<p [^>]*data-gpu-series-since>(.*?)</p>", text, re.S)
    assert note, "no note on a range longer than the GPUs' series"
    assert f"Per-GPU series begin {first.day} {first:%b %H:%M}" in note.group(1)
    six_hours = text_of(viewer.get(compute_url(tenant_a, node.pk, range="6h")))
    assert "data-gpu-series-since" not in six_hours
