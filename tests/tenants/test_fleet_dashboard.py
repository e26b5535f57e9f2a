"""The fleet dashboard: the staff home at /portal/, one row per visible tenant by attention."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from operations.compliance.models import ComplianceScan, Framework, Score
from operations.incidents.models import Incident
from operations.inventory import services as inventory_services
from operations.jobs.models import JobRun, JobStatus, JobTrigger
from operations.optimisation.models import Recommendation
from operations.readiness.models import ReadinessFramework, ReadinessScore
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from operations.telemetry.services import telemetry_monthly_costs_refresh
from tenants import services
from tenants.fleet import fleet_columns
from tenants.models import MspRole, StaffAssignment, TenantStatus
from tenants.portal import views as portal_views
from tenants.scoping import tenant_scope
from tests.compliance.builders import serious_incident
from tests.factories import TenantFactory, login_verified, make_staff
from tests.incidents.factories import make_incident

HOME = "/portal/"
_serial = itertools.count(1)


def _table(response):
    return response.context["table"]


def _cells(response) -> dict[str, dict[str, object]]:
    """{tenant slug: {column key: cell}} of the dashboard's rows."""
    table = _table(response)
    keys = [column.key for column in table.columns]
    return {
        row.tenant["slug"]: {key: cell for key, (cell, _href) in zip(keys, row.cells, strict=True)}
        for row in table.rows
    }


def _order(response) -> list[str]:
    return [row.tenant["slug"] for row in _table(response).rows]


def _total(response, key: str):
    table = _table(response)
    return table.totals[[column.key for column in table.columns].index(key)]


def _readiness_framework() -> ReadinessFramework:
    framework, _ = ReadinessFramework.objects.get_or_create(
        code="test-readiness", version="1", defaults={"title": "Test readiness", "definition": {}}
    )
    return framework


def give_figures(tenant, *, severity: str = "SEV3", compliance: float = 80.0, level: int = 3):
    """One of every figure the dashboard reads, for ``tenant``."""
    now = timezone.now()
    serial = next(_serial)
    make_incident(tenant, severity=severity)
    with tenant_scope(tenant.id):
        framework = Framework.objects.filter(code="eu-ai-act").latest("loaded_at")
        for days_ago, score in ((1, compliance + 10), (0, compliance)):
            at = now - dt.timedelta(days=days_ago)
            scan = ComplianceScan.objects.create(tenant=tenant, started_at=at, finished_at=at)
            Score.objects.create(
                tenant=tenant, scan=scan, framework=framework, computed_at=at, score=score
            )
        ReadinessScore.objects.create(
            tenant=tenant, framework=_readiness_framework(), overall=55, level=level
        )
        Recommendation.objects.create(
            tenant=tenant,
            kind="idle_gpu",
            subject_type="compute",
            subject_id=1,
            subject_key=f"compute:{serial}",
            subject_label="gpu-1",
            title="Idle GPUs",
            estimated_monthly_saving=Decimal("1200.00"),
        )
        JobRun.objects.create(
            tenant=tenant,
            kind="compliance_scan",
            status=JobStatus.FAILED,
            trigger=JobTrigger.SYSTEM,
            finished_at=now,
        )
        account = inventory_services.cloud_account_create(
            tenant=tenant, provider="aws", account_id=f"{serial:012d}", monthly_budget="1000"
        )
        compute = inventory_services.compute_create(
            tenant=tenant,
            hostname=f"gpu-{serial}",
            kind="gpu_node",
            gpu_count=8,
            cloud_account=account,
        )
        hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
        for metric, value in (("gpu_utilization", 40.0), ("cost_per_hour", 10.0)):
            TelemetryRollup.objects.create(
                tenant=tenant,
                resource_kind=ResourceKind.COMPUTE,
                resource_id=compute.id,
                metric=METRICS_BY_NAME[metric].code,
                bucket=hour,
                min_value=value,
                max_value=value,
                avg_value=value,
                sample_count=60,
                computed_at=now,
            )
        # As the rollup job does after recomputing an hour.
        telemetry_monthly_costs_refresh(tenant=tenant, hours=[hour], now=now)


@pytest.fixture(autouse=True)
def no_cached_figures(monkeypatch):
    # The telemetry columns are cached by tenant set; ids repeat from one test to the next.
    # A key prefix of the test's own, not cache.clear(): that flushes the whole Redis database,
    # throttle buckets of tests running beside this one included.
    monkeypatch.setattr(caches["default"], "key_prefix", f"fleet-test-{uuid.uuid4().hex}")


@pytest.fixture
def tenant_c(db):
    return TenantFactory(name="Cobalt Care", slug="cobalt", industry="Health")


def test_every_context_registers_its_column():
    keys = [column.key for column in fleet_columns()]
    assert keys == [
        "incidents",
        "sla",
        "regulator",
        "compliance",
        "readiness",
        "gpu",
        "spend",
        "savings",
        "failed_jobs",
    ]


def test_each_column_shows_the_tenants_figures(client, msp_admin, tenant_a, tenant_b):
    give_figures(tenant_a, severity="SEV1", compliance=45.0, level=1)
    login_verified(client, msp_admin.user)
    response = client.get(HOME)
    assert response.status_code == 200
    acme = _cells(response)["acme"]
    assert (acme["incidents"].text, acme["incidents"].detail) == ("1", "1 SEV1")
    assert acme["incidents"].tone == "bad"
    assert acme["compliance"].text == "45 ▼10"
    assert acme["compliance"].detail == "eu-ai-act"
    assert acme["readiness"].text == "L1"
    assert acme["gpu"].text == "40 %"
    assert acme["spend"].value == pytest.approx(10.0)
    assert "of 1,000" in acme["spend"].detail
    assert acme["savings"].value == Decimal("1200.00")
    assert acme["failed_jobs"].text == "1"
    # A tenant with nothing shows dashes, not zeros.
    borealis = _cells(response)["borealis"]
    assert {cell.text for cell in borealis.values()} == {"—"}
    text = response.content.decode()
    assert "Fleet dashboard" in text
    assert reverse("console:tenant-360", kwargs={"slug": "acme"}) in text
    assert "/portal/acme/incidents/" in text


def test_rows_are_sorted_by_what_needs_attention(client, msp_admin, tenant_a, tenant_b, tenant_c):
    make_incident(tenant_a, severity="SEV4")
    make_incident(tenant_b, severity="SEV1")
    login_verified(client, msp_admin.user)
    assert _order(client.get(HOME)) == ["borealis", "acme", "cobalt"]
    # A regulator deadline already missed outranks an open SEV1.
    serious_incident(tenant_c, deadline_in=-dt.timedelta(hours=2), notified=False)
    response = client.get(HOME)
    assert _order(response) == ["cobalt", "borealis", "acme"]
    assert _cells(response)["cobalt"]["regulator"].text == "1 overdue"


def test_sla_clocks_at_risk_and_breached(client, msp_admin, tenant_a, tenant_b):
    now = timezone.now()
    at_risk = make_incident(tenant_a, severity="SEV3")
    breached = make_incident(tenant_b, severity="SEV3")
    with tenant_scope(tenant_a.id, tenant_b.id):
        Incident.objects.filter(pk=at_risk.pk).update(ack_due_at=now + dt.timedelta(minutes=10))
        Incident.objects.filter(pk=breached.pk).update(ack_breached_at=now)
    login_verified(client, msp_admin.user)
    response = client.get(HOME)
    cells = _cells(response)
    assert cells["acme"]["sla"].text == "1 at risk"
    assert cells["borealis"]["sla"].text == "1 breached"
    assert _order(response)[0] == "borealis"
    assert _total(response, "sla").value == 2


def test_filters_narrow_the_rows_and_the_totals(client, msp_admin, tenant_a, tenant_b, tenant_c):
    give_figures(tenant_a)
    give_figures(tenant_c)
    services.tenant_transition(tenant=tenant_b, to_status=TenantStatus.ONBOARDING)
    engineer = make_staff(tenant_c, role=MspRole.ENGINEER, username="cobalt-eng")
    login_verified(client, msp_admin.user)
    assert set(_order(client.get(HOME, {"status": "onboarding"}))) == {"borealis"}
    assert set(_order(client.get(HOME, {"industry": "Health"}))) == {"cobalt"}
    assert set(_order(client.get(HOME, {"q": "acm"}))) == {"acme"}
    response = client.get(HOME, {"team": engineer.pk})
    assert _order(response) == ["cobalt"]
    assert _total(response, "incidents").value == 1
    assert _total(response, "savings").value == Decimal("1200.00")
    # An unknown filter value is ignored rather than emptying the page.
    assert len(_order(client.get(HOME, {"team": "999999", "industry": "Nope"}))) == 3
    response = client.get(HOME)
    assert _total(response, "incidents").value == 2
    assert _total(response, "failed_jobs").text == "2"
    assert "Fleet total" in response.content.decode()


def test_an_engineer_sees_only_assigned_tenants_rows_and_totals(
    client, engineer_a, tenant_a, tenant_b
):
    give_figures(tenant_a)
    give_figures(tenant_b, severity="SEV1")
    login_verified(client, engineer_a.user)
    response = client.get(HOME)
    assert _order(response) == ["acme"]
    assert _total(response, "incidents").value == 1
    assert _total(response, "savings").value == Decimal("1200.00")
    text = response.content.decode()
    assert "Borealis" not in text
    # The account-team filter offers only colleagues on visible tenants.
    StaffAssignment.objects.create(user=make_staff(username="other-eng"), tenant=tenant_b)
    choices = client.get(HOME).context["team_choices"]
    assert [name for _pk, name in choices] == ["eng-a"]


def _queries_for_home(client, count: int) -> int:
    for _ in range(count):
        give_figures(TenantFactory())
    with CaptureQueriesContext(connection) as queries:
        response = client.get(HOME)
    assert response.status_code == 200
    assert len(_table(response).rows) >= count
    return len(queries)


@pytest.mark.django_db
def test_the_query_count_does_not_grow_with_the_fleet(client, msp_admin):
    login_verified(client, msp_admin.user)
    few = _queries_for_home(client, 1)
    many = _queries_for_home(client, 27)
    assert few == many
    # Session, user, device, tenants, two filter lists, the status counts and the columns (and
    # on PostgreSQL the scope's set_config).
    assert many <= 22


def test_rows_come_a_page_at_a_time_with_the_total_of_all(
    client, msp_admin, tenant_a, tenant_b, tenant_c, monkeypatch
):
    monkeypatch.setattr(portal_views, "FLEET_PAGE_SIZE", 2)
    give_figures(tenant_c)
    login_verified(client, msp_admin.user)
    first = client.get(HOME)
    assert [row.tenant["slug"] for row in first.context["rows"]] == ["cobalt", "acme"]
    assert "page=2" in first.content.decode()
    second = client.get(HOME, {"page": 2})
    assert [row.tenant["slug"] for row in second.context["rows"]] == ["borealis"]
    assert _total(second, "incidents").value == 1
    assert "Fleet total" in second.content.decode()


def test_cached_columns_are_kept_per_tenant_set(client, msp_admin, tenant_a, tenant_b):
    give_figures(tenant_a)
    login_verified(client, msp_admin.user)
    assert _cells(client.get(HOME))["acme"]["gpu"].text == "40 %"
    with tenant_scope(tenant_a.id):
        TelemetryRollup.objects.filter(tenant=tenant_a).update(avg_value=90.0)
    # Within five minutes the same tenants get the kept figure, a fresh set a fresh one.
    assert _cells(client.get(HOME))["acme"]["gpu"].text == "40 %"
    assert _cells(client.get(HOME, {"q": "acme"}))["acme"]["gpu"].text == "90 %"


def test_the_admin_index_links_the_fleet_dashboard_first(client, msp_admin):
    login_verified(client, msp_admin.user)
    text = client.get(reverse("admin:index")).content.decode()
    assert 'id="fleet-dashboard-link"' in text
    assert text.index("Fleet dashboard") < text.index("Tenants")
