"""The readiness signals: each one's arithmetic on fixed data, its no-data case and its links;
one tenant's data never reaching another's readings; a fixed number of queries per tenant."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.compliance.models import ComplianceScan, Finding, Framework, Score, Waiver
from operations.incidents import alerting
from operations.incidents import services as incident_services
from operations.incidents.models import AlertRuleDefault, Incident
from operations.optimisation.models import Recommendation
from operations.readiness.signals import (
    LINK_LIMIT,
    SIGNAL_KEYS,
    SignalReading,
    readiness_signal,
    readiness_signals,
)
from operations.telemetry.services import telemetry_ingest_batch, telemetry_rollup_pending
from operations.telemetry.storage import SampleStore, sample_store
from tenants import services as tenant_services
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory, make_member, make_token
from tests.incidents.factories import act, make_incident
from tests.inventory.estate import (
    make_ai_system,
    make_cloud_account,
    make_cluster,
    make_compute,
    make_dataset,
    make_deployment,
    make_gpu_node,
    make_link,
    make_site,
)
from tests.optimisation.helpers import feed, feed_gpu, this_hour

pytestmark = pytest.mark.django_db

UNITS = {"%", "days", "count", "hours"}
LINK_KINDS = {
    "compute",
    "site",
    "dataset",
    "ai_system",
    "deployment",
    "finding",
    "incident",
    "recommendation",
    "cloud_account",
    "framework",
    "token",
}


def read(tenant, key: str, now=None) -> SignalReading:
    with tenant_scope(tenant.id):
        return readiness_signal(tenant=tenant, key=key, now=now)


def read_all(tenant, now=None) -> dict[str, SignalReading]:
    with tenant_scope(tenant.id):
        return readiness_signals(tenant=tenant, now=now)


def ids(reading: SignalReading, kind: str | None = None) -> list:
    return [link["id"] for link in reading.links if kind is None or link["kind"] == kind]


def sample(tenant, resource: str, at: dt.datetime, metric: str = "cost_per_hour", value=1.0):
    with tenant_scope(tenant.id):
        telemetry_ingest_batch(
            tenant=tenant,
            samples=[
                {"resource": resource, "metric": metric, "ts": at.isoformat(), "value": value}
            ],
        )
        telemetry_rollup_pending(tenant=tenant)


def recommendation(tenant, *, kind="idle_gpu", subject=None, status="open", **fields):
    subject_id = subject.pk if subject is not None else None
    values = {
        "subject_type": "compute" if subject is not None else "tenant",
        "subject_id": subject_id,
        "subject_key": f"compute:{subject_id}" if subject is not None else "tenant",
        "subject_label": subject.hostname if subject is not None else "all GPUs",
        "title": f"{kind} finding",
        "status": status,
    }
    with tenant_scope(tenant.id):
        return Recommendation.objects.create(tenant=tenant, kind=kind, **{**values, **fields})


def scan_with_scores(tenant, scores: dict[str, float | None], *, at=None) -> ComplianceScan:
    at = at or timezone.now()
    with tenant_scope(tenant.id):
        scan = ComplianceScan.objects.create(tenant=tenant, started_at=at, finished_at=at)
        for code, value in scores.items():
            Score.objects.create(
                tenant=tenant,
                scan=scan,
                framework=Framework.objects.filter(code=code).latest("loaded_at"),
                computed_at=at,
                score=value,
            )
    return scan


def finding(tenant, *, severity="critical", status="fail", subject_id=1, check="ai_system.x"):
    with tenant_scope(tenant.id):
        return Finding.objects.create(
            tenant=tenant,
            check_code=check,
            severity=severity,
            subject_type="ai_system",
            subject_id=subject_id,
            subject_label=f"System {subject_id}",
            status=status,
        )


def deployment_rule(tenant, **fields):
    values = {
        "name": f"Latency {fields.get('resource_pattern', 'all')}",
        "metric": "inference_latency_p95_ms",
        "target": "deployment",
        "condition": "above",
        "threshold": 500.0,
        "window_minutes": 15,
        "severity": "SEV2",
        "category": "performance",
    }
    with tenant_scope(tenant.id):
        return alerting.alert_rule_create(tenant=tenant, **{**values, **fields})


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Acme Analytics", slug="acme", data_residency="EU")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Borealis Bank", slug="borealis", data_residency="EU")


# --- The interface --------------------------------------------------------------------------


def test_an_empty_tenant_has_a_reading_for_every_key_and_no_data_in_any(tenant_a):
    readings = read_all(tenant_a)

    assert tuple(readings) == SIGNAL_KEYS
    assert len(SIGNAL_KEYS) == 17
    for key, reading in readings.items():
        assert reading.key == key
        assert reading.value is None, key
        assert reading.unit in UNITS
        assert reading.explanation
        assert reading.links == ()


def test_one_signal_reads_the_same_as_all_of_them(tenant_a):
    node = make_compute(tenant_a)
    sample(tenant_a, f"compute:{node.hostname}", timezone.now() - dt.timedelta(hours=1))
    make_compute(tenant_a)
    now = timezone.now()

    assert (
        read(tenant_a, "telemetry_coverage", now) == read_all(tenant_a, now)["telemetry_coverage"]
    )
    with pytest.raises(KeyError):
        read(tenant_a, "not_a_signal")


def test_another_tenants_estate_never_shows_in_a_readings(tenant_a, tenant_b):
    tenant_with_estate(tenant_b, size=2)

    theirs = read_all(tenant_b)
    ours = read_all(tenant_a)

    assert [key for key, reading in theirs.items() if reading.value is None] == []
    assert {key: reading.value for key, reading in ours.items()} == dict.fromkeys(SIGNAL_KEYS)


# --- Telemetry and capacity ------------------------------------------------------------------


def test_telemetry_coverage_counts_active_compute_and_production_deployments(tenant_a, tenant_b):
    now = timezone.now()
    fresh = make_compute(tenant_a, hostname="fresh")
    stale = make_compute(tenant_a, hostname="stale")
    make_compute(tenant_a, hostname="old", status="retired")
    make_compute(tenant_a, hostname="parked", status="maintenance")
    make_cluster(tenant_a, hostname="cluster")  # reports through its nodes
    live = make_deployment(tenant_a, name="live", environment="production")
    make_deployment(tenant_a, name="trial", environment="staging")
    sample(tenant_a, "compute:fresh", now - dt.timedelta(hours=2))
    sample(tenant_a, "compute:stale", now - dt.timedelta(hours=30))
    sample(tenant_a, "deployment:live", now - dt.timedelta(minutes=5), "requests_per_second")
    other = make_compute(tenant_b, hostname="stale")
    sample(tenant_b, "compute:stale", now - dt.timedelta(hours=1))

    reading = read(tenant_a, "telemetry_coverage", now)

    assert reading.value == pytest.approx(66.7)
    assert reading.unit == "%"
    assert "2 of 3 resources" in reading.explanation
    assert reading.links == ({"label": "stale", "kind": "compute", "id": stale.pk},)
    assert reading.detail["compute"] == {"reporting": 1, "total": 2}
    assert reading.detail["production_deployments"] == {"reporting": 1, "total": 1}
    assert fresh.pk not in ids(reading)
    assert live.pk not in ids(reading)
    assert other.pk not in ids(reading)


def test_reporting_resources_are_those_with_a_sample_since_even_mid_block(tenant_a, tenant_b):
    since = this_hour() - dt.timedelta(hours=3) + dt.timedelta(minutes=30)
    straddling = make_compute(tenant_a, hostname="straddling")
    before = make_compute(tenant_a, hostname="before")
    make_compute(tenant_b, hostname="straddling")
    for tenant, hostname, minutes in (
        (tenant_a, "straddling", (-20, 20)),  # one block of one hour, reaching past ``since``
        (tenant_a, "before", (-20, -1)),
        (tenant_b, "straddling", (10,)),
    ):
        with tenant_scope(tenant.id):
            telemetry_ingest_batch(
                tenant=tenant,
                samples=[
                    {
                        "resource": f"compute:{hostname}",
                        "metric": "cost_per_hour",
                        "ts": (since + dt.timedelta(minutes=m)).isoformat(),
                        "value": 1.0,
                    }
                    for m in minutes
                ],
            )

    with tenant_scope(tenant_a.id):
        found = sample_store().resources_reporting(tenant_id=tenant_a.id, since=since)
        # The portable read, sample by sample (on PostgreSQL, through the view).
        reference = SampleStore.resources_reporting(
            sample_store(), tenant_id=tenant_a.id, since=since
        )

    assert sorted(found) == sorted(reference) == [(1, straddling.pk)]
    assert before.pk not in {resource_id for _kind, resource_id in found}


def test_telemetry_coverage_without_compute_or_production_is_no_data(tenant_a):
    make_cluster(tenant_a)
    make_compute(tenant_a, status="offline")
    make_deployment(tenant_a, environment="staging")

    assert read(tenant_a, "telemetry_coverage").value is None


def test_gpu_headroom_is_100_minus_p95_on_gpu_nodes_serving_production(tenant_a, tenant_b):
    cluster = make_cluster(tenant_a)
    cool = make_gpu_node(tenant_a, cluster=cluster)
    warm = make_gpu_node(tenant_a, cluster=cluster)
    silent = make_gpu_node(tenant_a)
    busy_staging = make_gpu_node(tenant_a)
    make_deployment(tenant_a, compute=cluster, environment="production")
    make_deployment(tenant_a, compute=silent, environment="production")
    make_deployment(tenant_a, compute=busy_staging, environment="staging")
    feed_gpu(tenant_a, cool, hours=48, utilisation=40.0)
    feed_gpu(tenant_a, warm, hours=48, utilisation=60.0)
    feed_gpu(tenant_a, busy_staging, hours=48, utilisation=99.0)
    theirs = make_gpu_node(tenant_b)
    make_deployment(tenant_b, compute=theirs, environment="production")
    feed_gpu(tenant_b, theirs, hours=48, utilisation=99.0)

    reading = read(tenant_a, "gpu_headroom_production")

    assert reading.value == pytest.approx(40.0)
    assert reading.detail["p95_utilisation"] == pytest.approx(60.0)
    assert ids(reading) == [warm.pk, cool.pk]  # the most loaded first
    assert "3 GPU nodes serving production (2 reporting" in reading.explanation


def test_gpu_headroom_without_gpu_production_or_its_telemetry_is_no_data(tenant_a):
    cpu = make_compute(tenant_a)
    make_deployment(tenant_a, compute=cpu, environment="production")
    assert read(tenant_a, "gpu_headroom_production").value is None

    node = make_gpu_node(tenant_a)
    make_deployment(tenant_a, compute=node, environment="production")
    reading = read(tenant_a, "gpu_headroom_production")
    assert reading.value is None
    assert "1 GPU node serving production" in reading.explanation


def test_capacity_is_the_soonest_open_forecast(tenant_a, tenant_b):
    cluster = make_cluster(tenant_a, hostname="pool-a")
    soon = recommendation(
        tenant_a,
        kind="capacity_forecast",
        subject=cluster,
        evidence={"days_until_saturation": 12},
    )
    later = recommendation(
        tenant_a, kind="capacity_forecast", evidence={"days_until_saturation": 40}
    )
    recommendation(
        tenant_a,
        kind="capacity_forecast",
        subject=make_cluster(tenant_a),
        status="dismissed",
        evidence={"days_until_saturation": 2},
    )
    recommendation(tenant_b, kind="capacity_forecast", evidence={"days_until_saturation": 1})

    reading = read(tenant_a, "capacity_days_until_full")

    assert reading.value == 12
    assert reading.unit == "days"
    assert ids(reading, "recommendation") == [soon.pk, later.pk]
    assert reading.detail["forecasts"] == {"pool-a": 12, "all GPUs": 40}


def test_capacity_without_an_open_forecast_is_no_data(tenant_a):
    recommendation(tenant_a, kind="idle_gpu", subject=make_gpu_node(tenant_a))
    assert read(tenant_a, "capacity_days_until_full").value is None


def test_production_sites_redundant(tenant_a, tenant_b):
    resilient, lonely, lab, partner = (make_site(tenant_a) for _ in range(4))
    make_link(tenant_a, resilient, partner, redundancy="active_active")
    make_link(tenant_a, lonely, partner, redundancy="none")
    for site, environment in ((resilient, "production"), (lonely, "production"), (lab, "staging")):
        node = make_compute(tenant_a, site=site)
        make_deployment(tenant_a, compute=node, environment=environment)
    make_deployment(tenant_a, environment="production")  # runs nowhere known
    their_site = make_site(tenant_b)
    make_deployment(
        tenant_b, compute=make_compute(tenant_b, site=their_site), environment="production"
    )

    reading = read(tenant_a, "production_sites_redundant")

    assert reading.value == 50.0
    assert ids(reading) == [lonely.pk, resilient.pk]
    assert reading.detail == {"redundant": 1, "sites": 2}


def test_api_tokens_with_expiry(tenant_a, tenant_b):
    user = make_member(tenant_a)
    make_token(user, tenant=tenant_a, expires_in_days=30)
    make_token(user, tenant=tenant_a)
    revoked, _ = tenant_services.token_issue(user=user, name="gone", tenant=tenant_a)
    tenant_services.token_revoke(token=revoked)
    make_token(make_member(tenant_b), tenant=tenant_b)

    reading = read(tenant_a, "api_tokens_with_expiry")

    assert reading.value == 50.0
    assert reading.detail == {"active": 2, "without_expiry": 1}
    assert len(reading.links) == 1
    assert reading.links[0]["kind"] == "token"
    assert "never expires" in reading.links[0]["label"]
    assert revoked.pk not in ids(reading)


def test_api_tokens_without_any_is_no_data(tenant_a, tenant_b):
    make_token(make_member(tenant_b), tenant=tenant_b)
    assert read(tenant_a, "api_tokens_with_expiry").value is None


# --- Data ------------------------------------------------------------------------------------


def complete_dataset(tenant, **fields):
    values = {
        "owner": "Data team",
        "provenance": "Core banking",
        "licence": "Internal",
        "residency_country": "DE",
    }
    return make_dataset(tenant, **{**values, **fields})


def test_dataset_metadata_complete(tenant_a, tenant_b):
    complete_dataset(tenant_a)
    complete_dataset(tenant_a)
    no_licence = complete_dataset(tenant_a, licence="")
    bare = make_dataset(tenant_a)
    complete_dataset(tenant_b, licence="")

    reading = read(tenant_a, "dataset_metadata_complete")

    assert reading.value == 50.0
    assert set(ids(reading, "dataset")) == {no_licence.pk, bare.pk}
    assert reading.detail["missing"]["licence"] == 2
    assert reading.detail["missing"]["owner"] == 1
    assert "2 of 4 datasets" in reading.explanation


def test_personal_data_residency_matches_the_tenants_policy(tenant_a, tenant_b):
    complete_dataset(tenant_a, personal_data=True, residency_country="DE")
    abroad = complete_dataset(tenant_a, personal_data=True, residency_country="GB")
    nowhere = complete_dataset(tenant_a, personal_data=True, residency_country="")
    complete_dataset(tenant_a, personal_data=False, residency_country="US")
    complete_dataset(tenant_b, personal_data=True, residency_country="US")

    reading = read(tenant_a, "personal_data_residency_match")

    assert reading.value == pytest.approx(33.3)
    assert ids(reading) == [abroad.pk, nowhere.pk]
    assert reading.detail["personal_datasets"] == 3


def test_personal_data_residency_without_policy_or_personal_data_is_no_data(tenant_a):
    complete_dataset(tenant_a, personal_data=False)
    assert read(tenant_a, "personal_data_residency_match").value is None

    complete_dataset(tenant_a, personal_data=True)
    tenant_services.tenant_update(tenant=tenant_a, data_residency="")
    assert read(tenant_a, "personal_data_residency_match").value is None


# --- Governance ------------------------------------------------------------------------------


def test_compliance_score_is_the_lowest_latest_score_in_scope(tenant_a, tenant_b):
    earlier = timezone.now() - dt.timedelta(days=2)
    scan_with_scores(tenant_a, {"eu-ai-act": 20, "iso-42001": 30}, at=earlier)
    scan_with_scores(tenant_a, {"eu-ai-act": 75, "iso-42001": 60, "nist-ai-rmf": 10})
    scan_with_scores(tenant_b, {"eu-ai-act": 5, "iso-42001": 5})
    tenant_services.service_plan_update(
        tenant=tenant_a, frameworks_in_scope=["eu-ai-act", "iso-42001"]
    )

    reading = read(tenant_a, "compliance_score")

    assert reading.value == 60.0
    assert ids(reading, "framework") == ["iso-42001", "eu-ai-act"]
    assert reading.detail["by_framework"] == {"eu-ai-act": 75.0, "iso-42001": 60.0}

    tenant_services.service_plan_update(tenant=tenant_a, frameworks_in_scope=[])
    assert read(tenant_a, "compliance_score").value == 10.0  # every framework scored


def test_compliance_score_without_a_score_is_no_data(tenant_a, tenant_b):
    scan_with_scores(tenant_b, {"eu-ai-act": 50})
    assert read(tenant_a, "compliance_score").value is None
    scan_with_scores(tenant_a, {"eu-ai-act": None})  # nothing could be assessed
    assert read(tenant_a, "compliance_score").value is None


def test_open_critical_findings_counts_unwaived_critical_failures(tenant_a, tenant_b):
    scan_with_scores(tenant_a, {"eu-ai-act": 50})
    failing = [finding(tenant_a, subject_id=n) for n in (1, 2)]
    waived = finding(tenant_a, subject_id=3, check="ai_system.waived")
    finding(tenant_a, subject_id=4, status="pass")
    finding(tenant_a, subject_id=5, severity="high")
    finding(tenant_b, subject_id=1)
    with tenant_scope(tenant_a.id):
        Waiver.objects.create(
            tenant=tenant_a,
            check_code="ai_system.waived",
            subject_type="ai_system",
            subject_id=3,
            reason="Accepted",
            approved_by="CRO",
            expires_at=timezone.now() + dt.timedelta(days=30),
        )

    reading = read(tenant_a, "open_critical_findings")

    assert reading.value == 2
    assert reading.unit == "count"
    assert ids(reading, "finding") == [f.pk for f in failing]
    assert waived.pk not in ids(reading)


def test_open_critical_findings_before_any_scan_is_no_data_and_zero_after(tenant_a, tenant_b):
    scan_with_scores(tenant_b, {"eu-ai-act": 50})
    finding(tenant_b)
    assert read(tenant_a, "open_critical_findings").value is None

    scan_with_scores(tenant_a, {"eu-ai-act": 100})
    assert read(tenant_a, "open_critical_findings").value == 0


def test_ai_systems_risk_classified(tenant_a, tenant_b):
    make_ai_system(tenant_a, risk_tier="minimal")
    unclassified = make_ai_system(tenant_a, risk_tier="unclassified")
    no_fria = make_ai_system(tenant_a, risk_tier="high", fria_required=True)
    make_ai_system(
        tenant_a, risk_tier="high", fria_required=True, fria_completed_at=dt.date(2025, 4, 2)
    )
    make_ai_system(tenant_a, risk_tier="high")  # no FRIA required of this deployer
    make_ai_system(tenant_a, risk_tier="unclassified", stage="retired")
    make_ai_system(tenant_b, risk_tier="unclassified")

    reading = read(tenant_a, "ai_systems_risk_classified")

    assert reading.value == 60.0
    assert ids(reading) == [unclassified.pk, no_fria.pk]
    assert reading.detail == {"systems": 5, "unclassified": 1, "fria_missing": 1}


def test_ai_systems_owned(tenant_a, tenant_b):
    make_ai_system(tenant_a, business_owner="Head of Lending", technical_owner="ML team")
    half = make_ai_system(tenant_a, business_owner="Head of Lending")
    none = make_ai_system(tenant_a)
    make_ai_system(tenant_a, stage="retired")
    make_ai_system(tenant_b)

    reading = read(tenant_a, "ai_systems_owned")

    assert reading.value == pytest.approx(33.3)
    assert set(ids(reading)) == {half.pk, none.pk}
    assert "no technical owner" in next(
        link["label"] for link in reading.links if link["id"] == half.pk
    )


def test_ai_systems_with_only_retired_ones_is_no_data(tenant_a):
    make_ai_system(tenant_a, stage="retired", risk_tier="unclassified")
    assert read(tenant_a, "ai_systems_owned").value is None
    assert read(tenant_a, "ai_systems_risk_classified").value is None


# --- AI operations ---------------------------------------------------------------------------


def operated(tenant, name, **fields):
    values = {
        "name": name,
        "environment": "production",
        "monitoring_enabled": True,
        "runbook_url": f"https://runbooks.example.com/{name}",
    }
    return make_deployment(tenant, **{**values, **fields})


def test_production_deployments_operable(tenant_a, tenant_b):
    watched = operated(tenant_a, "watched-1")
    unwatched = operated(tenant_a, "other-1")
    blind = operated(tenant_a, "watched-2", monitoring_enabled=False, runbook_url="")
    operated(tenant_a, "watched-3", environment="staging", monitoring_enabled=False)
    deployment_rule(tenant_a, resource_pattern="watched-*")
    deployment_rule(tenant_b)  # watches every deployment of B only
    operated(tenant_b, "other-1")

    reading = read(tenant_a, "production_deployments_operable")

    assert reading.value == pytest.approx(33.3)
    assert ids(reading) == [unwatched.pk, blind.pk]
    assert watched.pk not in ids(reading)
    assert reading.detail["missing"] == {"monitoring": 1, "runbook": 1, "alert rule": 1}


def test_an_msp_wide_default_rule_watches_production(tenant_a):
    deployment = operated(tenant_a, "served")
    assert read(tenant_a, "production_deployments_operable").value == 0.0

    AlertRuleDefault.objects.create(
        name="Production latency",
        metric="inference_latency_p95_ms",
        target="deployment",
        environment="production",
        condition="above",
        threshold=500.0,
        window_minutes=15,
        severity="SEV2",
        category="performance",
    )
    reading = read(tenant_a, "production_deployments_operable")
    assert reading.value == 100.0
    assert deployment.pk not in ids(reading)


def test_production_deployments_operable_without_production_is_no_data(tenant_a):
    operated(tenant_a, "trial", environment="staging")
    assert read(tenant_a, "production_deployments_operable").value is None


def resolved_incident(tenant, *, raised: dt.datetime, resolved: dt.datetime, **fields):
    incident = make_incident(tenant, at=raised, **fields)
    return act(tenant, incident_services.incident_resolve, incident, at=resolved)


def test_mttr_is_the_mean_of_incidents_resolved_in_90_days(tenant_a, tenant_b):
    now = timezone.now()
    slow = resolved_incident(
        tenant_a, raised=now - dt.timedelta(hours=10), resolved=now - dt.timedelta(hours=6)
    )
    quick = resolved_incident(
        tenant_a, raised=now - dt.timedelta(hours=3), resolved=now - dt.timedelta(hours=1)
    )
    resolved_incident(
        tenant_a, raised=now - dt.timedelta(days=101), resolved=now - dt.timedelta(days=100)
    )
    make_incident(tenant_a, at=now - dt.timedelta(hours=50))  # still open
    resolved_incident(
        tenant_b, raised=now - dt.timedelta(hours=90), resolved=now - dt.timedelta(hours=1)
    )

    reading = read(tenant_a, "mttr_90d", now)

    assert reading.value == pytest.approx(3.0)
    assert reading.unit == "hours"
    assert ids(reading, "incident") == [slow.pk, quick.pk]
    assert "2 incidents resolved" in reading.explanation


def test_mttr_without_a_resolved_incident_is_no_data(tenant_a):
    make_incident(tenant_a)
    assert read(tenant_a, "mttr_90d").value is None


def test_sla_attainment_counts_settled_clocks_of_90_days(tenant_a, tenant_b):
    now = timezone.now()
    met = make_incident(tenant_a, at=now - dt.timedelta(hours=5))
    late = make_incident(tenant_a, at=now - dt.timedelta(hours=4))
    running = make_incident(tenant_a, at=now - dt.timedelta(minutes=1))
    old = make_incident(tenant_a, at=now - dt.timedelta(days=120))
    theirs = make_incident(tenant_b, at=now - dt.timedelta(hours=4))
    with tenant_scope(tenant_a.id, tenant_b.id):
        Incident.objects.filter(pk=met.pk).update(
            acknowledged_at=now - dt.timedelta(hours=4), resolved_at=now - dt.timedelta(hours=3)
        )
        Incident.objects.filter(pk__in=[late.pk, old.pk, theirs.pk]).update(
            ack_breached_at=now - dt.timedelta(hours=3)
        )
        Incident.objects.filter(pk=running.pk).update(ack_breached_at=None)

    reading = read(tenant_a, "sla_attainment_90d", now)

    # met: acknowledge and resolve in time; late: acknowledge breached, resolve still running.
    assert reading.value == pytest.approx(66.7)
    assert reading.detail == {
        "ack_met": 1,
        "ack_settled": 2,
        "resolve_met": 1,
        "resolve_settled": 1,
    }
    assert ids(reading) == [late.pk]


def test_sla_attainment_without_a_settled_clock_is_no_data(tenant_a):
    make_incident(tenant_a)
    assert read(tenant_a, "sla_attainment_90d").value is None


def test_idle_gpu_share(tenant_a, tenant_b):
    idle, dismissed, oversized, _ = (make_gpu_node(tenant_a) for _ in range(4))
    make_gpu_node(tenant_a, status="maintenance")
    make_compute(tenant_a)  # no GPU
    recommendation(tenant_a, subject=idle)
    recommendation(tenant_a, subject=dismissed, status="dismissed")
    recommendation(tenant_a, kind="right_size", subject=oversized)
    theirs = make_gpu_node(tenant_b)
    recommendation(tenant_b, subject=theirs)

    reading = read(tenant_a, "idle_gpu_share")

    assert reading.value == 25.0
    assert ids(reading) == [idle.pk]
    assert reading.detail == {"idle": 1, "gpu_nodes": 4}


def test_idle_gpu_share_without_gpus_is_no_data(tenant_a):
    make_compute(tenant_a)
    assert read(tenant_a, "idle_gpu_share").value is None


def test_open_savings_share_against_the_monthly_run_rate(tenant_a, tenant_b):
    cluster = make_cluster(tenant_a, hourly_cost="5.0000")  # its nodes carry the cost
    node = make_gpu_node(tenant_a, cluster=cluster, hourly_cost="8.0000")
    make_compute(tenant_a, hourly_cost="2.0000", status="maintenance")
    make_compute(tenant_a, hourly_cost="50.0000", status="retired")
    saving = recommendation(tenant_a, subject=node, estimated_monthly_saving=Decimal("730.00"))
    recommendation(tenant_a, kind="capacity_forecast", evidence={"days_until_saturation": 9})
    recommendation(
        tenant_a,
        kind="right_size",
        subject=node,
        status="dismissed",
        estimated_monthly_saving=Decimal("5000.00"),
    )
    recommendation(
        tenant_b, subject=make_gpu_node(tenant_b), estimated_monthly_saving=Decimal("9999.00")
    )

    reading = read(tenant_a, "open_savings_share")

    # (8 + 2) an hour × 730 hours = 7,300 a month; 730 of it open to save.
    assert reading.value == 10.0
    assert ids(reading) == [saving.pk]
    assert reading.detail["monthly_run_rate"] == "7300.00"
    assert reading.detail["monthly_saving"] == "730.00"


def test_open_savings_share_without_costed_compute_is_no_data(tenant_a):
    make_compute(tenant_a)
    recommendation(tenant_a, estimated_monthly_saving=Decimal("100.00"))
    assert read(tenant_a, "open_savings_share").value is None


def test_cloud_spend_is_projected_to_month_end_against_the_budget(tenant_a, tenant_b):
    now = this_hour()
    month_start = now.replace(day=1, hour=0)
    start = max(month_start, now - dt.timedelta(hours=6))
    hours = int((now - start).total_seconds() // 3600)
    if not hours:
        pytest.skip("the month began this hour: nothing spent yet to project")
    month_hours = calendar.monthrange(now.year, now.month)[1] * 24
    account = make_cloud_account(tenant_a, monthly_budget=2000, currency="EUR")
    make_cloud_account(tenant_a, monthly_budget=100)  # nothing reports spend in it
    make_cloud_account(tenant_a, monthly_budget=None)
    node = make_compute(tenant_a, cloud_account=account)
    make_compute(tenant_a)  # on premises: not cloud spend
    feed(tenant_a, f"compute:{node.hostname}", "cost_per_hour", start, now, 2.0)
    their_account = make_cloud_account(tenant_b, monthly_budget=10)
    theirs = make_compute(tenant_b, cloud_account=their_account)
    feed(tenant_b, f"compute:{theirs.hostname}", "cost_per_hour", start, now, 50.0)

    reading = read(tenant_a, "cloud_spend_vs_budget", now)

    # 2 an hour over the month's hours, against 2,000.
    assert reading.value == pytest.approx(round(100 * 2.0 * month_hours / 2000, 1))
    assert ids(reading, "cloud_account") == [account.pk]
    assert reading.detail["accounts_without_spend"] == 1
    assert reading.detail["by_currency"] == {"EUR": reading.value}


def test_cloud_spend_without_a_budget_or_spend_is_no_data(tenant_a):
    make_cloud_account(tenant_a, monthly_budget=None)
    assert read(tenant_a, "cloud_spend_vs_budget").value is None
    account = make_cloud_account(tenant_a, monthly_budget=1000)
    make_compute(tenant_a, cloud_account=account)
    assert read(tenant_a, "cloud_spend_vs_budget").value is None


# --- Links and queries -----------------------------------------------------------------------


def test_links_are_capped_and_well_formed(tenant_a):
    for _ in range(LINK_LIMIT + 3):
        make_ai_system(tenant_a)  # no owners

    reading = read(tenant_a, "ai_systems_owned")

    assert reading.value == 0.0
    assert len(reading.links) == LINK_LIMIT
    for link in reading.links:
        assert set(link) == {"label", "kind", "id"}
        assert link["kind"] in LINK_KINDS


def tenant_with_estate(tenant, *, size: int) -> None:
    """``size`` of everything every signal reads, each signal with data."""
    now = timezone.now()
    tenant_services.service_plan_update(tenant=tenant, frameworks_in_scope=["eu-ai-act"])
    scan_with_scores(tenant, {"eu-ai-act": 55})
    user = make_member(tenant)
    deployment_rule(tenant, resource_pattern="prod-*")
    for n in range(size):
        site, other = make_site(tenant), make_site(tenant)
        make_link(tenant, site, other, redundancy="active_passive" if n % 2 else "none")
        account = make_cloud_account(tenant, monthly_budget=1000)
        cluster = make_cluster(tenant, site=site)
        node = make_gpu_node(tenant, cluster=cluster, site=site, cloud_account=account)
        system = make_ai_system(tenant, business_owner="CDO", risk_tier="unclassified")
        make_deployment(
            tenant,
            name=f"prod-{tenant.slug}-{n}",
            ai_system=system,
            compute=node,
            environment="production",
            monitoring_enabled=bool(n % 2),
        )
        make_dataset(tenant, personal_data=True, residency_country="FR" if n % 2 else "US")
        feed_gpu(tenant, node, hours=2, utilisation=50.0 + n)
        sample(tenant, f"compute:{node.hostname}", now - dt.timedelta(minutes=10))
        recommendation(
            tenant, subject=node, estimated_monthly_saving=Decimal("10.00"), title=f"idle {n}"
        )
        recommendation(
            tenant,
            kind="capacity_forecast",
            subject=cluster,
            evidence={"days_until_saturation": 30 + n},
        )
        finding(tenant, subject_id=system.pk)
        make_token(user, tenant=tenant, expires_in_days=30 if n % 2 else None)
        resolved_incident(
            tenant, raised=now - dt.timedelta(hours=5 + n), resolved=now - dt.timedelta(hours=1)
        )


@pytest.mark.parametrize("size", [1, 6])
def test_the_readings_take_a_fixed_number_of_queries(
    tenant_a, tenant_b, size, django_assert_max_num_queries
):
    tenant_with_estate(tenant_a, size=size)
    tenant_with_estate(tenant_b, size=1)
    with CaptureQueriesContext(connection) as small:
        read_all(tenant_b)

    with django_assert_max_num_queries(len(small.captured_queries)):
        readings = read_all(tenant_a)

    assert len(small.captured_queries) <= 25
    assert [key for key, reading in readings.items() if reading.value is None] == []
