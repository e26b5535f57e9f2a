"""The client overview: panels registered by each context render in order, with figures computed
on fixed data (MTTA, MTTR and SLA attainment against the period before, compliance trend, GPU
utilisation and spend against budget, open and realised savings), in a constant number of
queries whatever the data's size."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.template import engines
from django.template.loaders.locmem import Loader
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from operations.compliance.models import ComplianceScan, Framework, Score
from operations.incidents.models import Incident
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from tenants import overview
from tenants.models import ServicePlan, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.incidents.factories import make_incident
from tests.inventory.estate import make_cloud_account, make_gpu_node
from tests.optimisation.test_api import make_recommendation

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def overview_url(tenant) -> str:
    return reverse("portal:overview", kwargs={"slug": tenant.slug})


@pytest.fixture
def viewer(client, tenant_a):
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    return client


def page_text(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def row(text: str, window: int, label: str) -> tuple[str, str, str]:
    """(value, value before, trend) of one figure of the incidents panel's ``window`` table."""
    table = re.search(rf'data-window="{window}">(.*?)</table>', text, re.S).group(1)
    found = re.search(
        rf'<th scope="row">{label}</th>\s*<td class="num">([^<]*)</td>\s*'
        r'<td class="num muted">([^<]*)</td>\s*<td class="trend([^"]*)"',
        table,
    )
    return found.group(1), found.group(2), found.group(3).strip()


def incident(tenant, *, days_ago: float, ack_minutes=None, resolve_minutes=None, **fields):
    created = NOW - dt.timedelta(days=days_ago)
    made = make_incident(tenant, at=created, **fields)
    changes = {"created_at": created}
    if ack_minutes is not None:
        changes["acknowledged_at"] = created + dt.timedelta(minutes=ack_minutes)
        changes["status"] = "acknowledged"
    if resolve_minutes is not None:
        changes["resolved_at"] = created + dt.timedelta(minutes=resolve_minutes)
        changes["status"] = "resolved"
    with tenant_scope(tenant.id):
        Incident.objects.filter(pk=made.pk).update(**changes)
    return made


def rollups(tenant, resource_id, metric, values, *, kind=ResourceKind.COMPUTE, end=None):
    """One hourly rollup per value, the last one in the hour of ``end`` (default: now)."""
    end = (end or NOW).replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant.id):
        TelemetryRollup.objects.bulk_create(
            TelemetryRollup(
                tenant=tenant,
                resource_kind=kind,
                resource_id=resource_id,
                metric=METRICS_BY_NAME[metric].code,
                bucket=end - dt.timedelta(hours=len(values) - 1 - index),
                min_value=value,
                max_value=value,
                avg_value=value,
                sample_count=12,
                computed_at=NOW,
            )
            for index, value in enumerate(values)
        )


def scores(tenant, values: dict[str, float], *, at):
    with tenant_scope(tenant.id):
        scan = ComplianceScan.objects.create(tenant=tenant, started_at=at, finished_at=at)
        for code, value in values.items():
            Score.objects.create(
                tenant=tenant,
                scan=scan,
                framework=Framework.objects.filter(code=code).latest("loaded_at"),
                computed_at=at,
                score=value,
            )


def test_panels_render_in_their_order_and_a_registered_panel_joins_them(
    viewer, tenant_a, monkeypatch
):
    monkeypatch.setitem(
        overview._panels,
        "first",
        overview.OverviewPanel(
            key="first",
            title="Registered first",
            order=1,
            template="portal/_test_panel.html",
            build=lambda *, tenant, now: {"figure": f"{tenant.slug} figure"},
        ),
    )
    engine = engines["django"].engine
    monkeypatch.setattr(
        engine,
        "template_loaders",
        [
            Loader(engine, {"portal/_test_panel.html": "<p>{{ figure }}</p>"}),
            *engine.template_loaders,
        ],
    )
    text = page_text(viewer.get(overview_url(tenant_a)))
    keys = re.findall(r'data-panel="([a-z]+)"', text)
    assert keys == ["first", "incidents", "compliance", "estate", "savings"]
    assert "<p>acme figure</p>" in text


def test_incident_figures_over_30_and_90_days_against_the_period_before(viewer, tenant_a, tenant_b):
    incident(tenant_a, days_ago=5, ack_minutes=10, resolve_minutes=120, severity="SEV2")
    breached = incident(tenant_a, days_ago=10, ack_minutes=30, severity="SEV1")
    with tenant_scope(tenant_a.id):
        Incident.objects.filter(pk=breached.pk).update(ack_breached_at=NOW)
    incident(tenant_a, days_ago=40, ack_minutes=20, resolve_minutes=240, severity="SEV3")
    incident(tenant_b, days_ago=3, ack_minutes=500, severity="SEV1")  # not acme's
    text = page_text(viewer.get(overview_url(tenant_a)))

    assert re.search(r'<span class="stat">1</span> open incident\b', text)
    assert row(text, 30, "Incidents raised") == ("2", "1", "trend--worse")
    assert row(text, 30, "Mean time to acknowledge") == ("20 min", "20 min", "")
    assert row(text, 30, "Mean time to resolve") == ("2 h", "4 h", "trend--better")
    assert row(text, 30, "Acknowledged within SLA") == ("50 %", "100 %", "trend--worse")
    assert row(text, 30, "Resolved within SLA") == ("100 %", "100 %", "")
    # Over 90 days all three count; the 90 days before hold none.
    assert row(text, 90, "Incidents raised") == ("3", "0", "trend--worse")
    assert row(text, 90, "Mean time to acknowledge") == ("20 min", "—", "")
    assert row(text, 90, "Mean time to resolve") == ("3 h", "—", "")
    assert row(text, 90, "Acknowledged within SLA")[0] == "66.7 %"


def test_compliance_latest_scores_and_their_change(viewer, tenant_a):
    scores(tenant_a, {"eu-ai-act": 40, "iso-42001": 70}, at=NOW - dt.timedelta(days=7))
    scores(tenant_a, {"eu-ai-act": 55.5, "iso-42001": 62}, at=NOW - dt.timedelta(days=1))
    text = page_text(viewer.get(overview_url(tenant_a)))
    eu = re.search(r'data-framework="eu-ai-act">(.*?)</tr>', text, re.S).group(1)
    iso = re.search(r'data-framework="iso-42001">(.*?)</tr>', text, re.S).group(1)
    assert "55.5 %" in eu
    assert "up 15.5 points" in eu
    assert "62 %" in iso
    assert "down 8 points" in iso
    assert "Compliance score per framework" in text


def test_gpu_utilisation_and_spend_against_the_budget(viewer, tenant_a, tenant_b):
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="UTC")
    account = make_cloud_account(tenant_a, monthly_budget=Decimal("1000"), currency="EUR")
    node = make_gpu_node(tenant_a, cloud_account=account)
    other = make_gpu_node(tenant_b)
    hours = min(6, NOW.hour + 1)  # hours of today (UTC), so all in this month
    rollups(tenant_a, node.id, "gpu_utilization", [40.0] * hours)
    rollups(tenant_a, node.id, "cost_per_hour", [10.0] * hours)
    rollups(tenant_b, other.id, "cost_per_hour", [999.0] * hours)
    # An on-premises node's cost is drawn per day but not weighed against a cloud budget.
    on_premises = make_gpu_node(tenant_a)
    rollups(tenant_a, on_premises.id, "cost_per_hour", [100.0] * hours)
    text = page_text(viewer.get(overview_url(tenant_a)))
    panel = re.search(r'data-panel="estate"(.*?)</section>', text, re.S).group(1)
    assert re.search(r'data-figure="utilisation-mean">40.0 %', panel)
    spent = f"EUR {10 * hours:,}.00"
    assert f'data-figure="month-to-date">{spent}' in panel
    assert "budget EUR 1,000.00" in panel
    assert f"{10 * hours / 10:.1f} % used" in panel
    assert "Monthly budget: 1,000 EUR" in panel  # the budget line of the spend chart
    assert f"{110 * hours:,}" in panel  # the daily chart: cloud and on-premises together


def test_open_accepted_and_realised_savings(viewer, tenant_a, tenant_b):
    make_recommendation(tenant_a, 1, estimated_monthly_saving=Decimal("120.50"))
    make_recommendation(tenant_a, 2, estimated_monthly_saving=Decimal("79.50"))
    make_recommendation(tenant_a, 3, estimated_monthly_saving=Decimal("300"), status="implemented")
    make_recommendation(tenant_a, 4, estimated_monthly_saving=Decimal("50"), status="dismissed")
    make_recommendation(tenant_b, 5, estimated_monthly_saving=Decimal("9999"))
    text = page_text(viewer.get(overview_url(tenant_a)))
    panel = re.search(r'data-panel="savings"(.*?)</section>', text, re.S).group(1)

    def stage(name):
        return re.search(rf'data-stage="{name}">.*?<dd>([^<]*)</dd>', panel, re.S).group(1)

    assert stage("open") == "USD 200.00"
    assert stage("accepted") == "—"
    assert stage("implemented") == "USD 300.00"
    assert "9,999" not in panel


def _overview_queries(client, tenant) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(overview_url(tenant)).status_code == 200
    return len(queries)


def _estate_with_data(tenant, n: int, *, first: int):
    account = make_cloud_account(tenant, monthly_budget=Decimal("5000"), currency="USD")
    for index in range(n):
        node = make_gpu_node(tenant, cloud_account=account if index % 2 else None)
        rollups(tenant, node.id, "gpu_utilization", [float(index)] * 30)
        rollups(tenant, node.id, "cost_per_hour", [1.5] * 30)
        incident(tenant, days_ago=index + 1, ack_minutes=5, resolve_minutes=60 + index)
        make_recommendation(tenant, first + index, status="implemented" if index % 2 else "open")
    scores(tenant, {"eu-ai-act": 10 + n, "iso-42001": 20}, at=NOW - dt.timedelta(days=n))


def test_the_overview_runs_the_same_queries_whatever_the_data_size(viewer, tenant_a):
    _estate_with_data(tenant_a, 1, first=100)
    few = _overview_queries(viewer, tenant_a)
    _estate_with_data(tenant_a, 12, first=200)
    many = _overview_queries(viewer, tenant_a)
    assert few == many


def test_another_tenants_overview_is_a_404_like_a_missing_one(viewer, tenant_b):
    assert viewer.get(overview_url(tenant_b)).status_code == 404
    assert viewer.get("/portal/no-such-tenant/").status_code == 404
