"""A fixed month of one tenant's data for report tests: incidents with known clocks, a
postmortem, a regulator deadline met, GPU and cost rollups, a budget, compliance scores and
recommendations whose figures the tests assert."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from operations.compliance.models import ComplianceScan, Framework, Score
from operations.incidents import services as incidents
from operations.incidents.models import Incident
from operations.inventory.models import CloudAccount, ComputeResource
from operations.optimisation.models import Recommendation
from operations.reports.periods import Period, month_period
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from tenants.models import ServicePlan
from tenants.scoping import tenant_scope

ZONE = "Europe/Berlin"


def last_month() -> Period:
    today = timezone.now().astimezone(ZoneInfo(ZONE)).date()
    return month_period(today).previous()


def _incident(tenant, *, at, severity, ack_minutes=None, resolve_minutes=None, **fields):
    fields.setdefault("title", f"{severity} incident")
    fields.setdefault("category", "performance")
    incident = incidents.incident_create(tenant=tenant, at=at, severity=severity, **fields)
    if ack_minutes is not None:
        incident = incidents.incident_acknowledge(
            tenant=tenant, incident=incident, at=at + dt.timedelta(minutes=ack_minutes)
        )
    if resolve_minutes is not None:
        incident = incidents.incident_resolve(
            tenant=tenant, incident=incident, at=at + dt.timedelta(minutes=resolve_minutes)
        )
    return incident


def _rollups(tenant, compute, metric: str, start: dt.datetime, hours: int, value: float):
    now = timezone.now()
    TelemetryRollup.objects.bulk_create(
        TelemetryRollup(
            tenant=tenant,
            resource_kind=ResourceKind.COMPUTE,
            resource_id=compute.pk,
            metric=METRICS_BY_NAME[metric].code,
            bucket=start + dt.timedelta(hours=hour),
            min_value=value,
            max_value=value,
            avg_value=value,
            sample_count=12,
            computed_at=now,
        )
        for hour in range(hours)
    )


def tenant_with_a_month(tenant, period: Period | None = None, *, name: str = "gpu-node-1") -> dict:
    """Fill ``tenant``'s ``period`` (default last month, Berlin time). Returns what was made."""
    period = period or last_month()
    ServicePlan.objects.filter(tenant=tenant).update(timezone=ZONE)
    tenant.refresh_from_db()
    zone = ZoneInfo(ZONE)
    start, _end = period.bounds(zone)
    day = dt.timedelta(days=1)
    with tenant_scope(tenant.id):
        sev1 = _incident(
            tenant,
            at=start + 2 * day + dt.timedelta(hours=10),
            severity="SEV1",
            ack_minutes=6,
            resolve_minutes=90,
            title=f"{tenant.name} inference outage",
        )
        incidents.postmortem_save(
            tenant=tenant,
            incident=sev1,
            summary=f"Cooling failure in rack 4 at {tenant.name}",
            root_cause="A failed fan tray",
        )
        _incident(tenant, at=start + 5 * day, severity="SEV2", ack_minutes=20, resolve_minutes=240)
        for offset in (7, 9):
            _incident(
                tenant,
                at=start + offset * day,
                severity="SEV3",
                ack_minutes=30,
                resolve_minutes=120,
            )
        # The previous month: one incident, for the trend.
        _incident(tenant, at=start - 3 * day, severity="SEV4", ack_minutes=10, resolve_minutes=60)
        serious = _incident(
            tenant,
            at=start + 10 * day,
            severity="SEV2",
            ack_minutes=5,
            resolve_minutes=60,
            title="Serious incident",
        )
        Incident.objects.filter(pk=serious.pk).update(
            serious=True,
            regulator_deadline=start + 12 * day,
            regulator_notified_at=start + 11 * day,
        )
        account = CloudAccount.objects.create(
            tenant=tenant,
            provider="aws",
            account_id=f"{tenant.slug}-1",
            name="Main",
            monthly_budget=Decimal("1000.00"),
            currency="EUR",
        )
        compute = ComputeResource.objects.create(
            tenant=tenant,
            hostname=name,
            kind="gpu_node",
            cloud_account=account,
            gpu_model="NVIDIA H100 80GB",
            gpu_count=8,
            gpu_memory_gb=80,
        )
        _rollups(tenant, compute, "gpu_utilization", start + day, 72, 50.0)
        _rollups(tenant, compute, "cost_per_hour", start + day, 72, 10.0)
        framework = Framework.objects.order_by("pk").first()
        for index, value in enumerate((60, 70, 80)):
            at = start + (index * 7 + 1) * day
            scan = ComplianceScan.objects.create(tenant=tenant, started_at=at, finished_at=at)
            Score.objects.create(
                tenant=tenant, scan=scan, framework=framework, computed_at=at, score=value
            )
        Recommendation.objects.create(
            tenant=tenant,
            kind="idle_gpu",
            subject_type="compute",
            subject_id=compute.pk,
            subject_key=f"compute:{compute.pk}",
            subject_label=name,
            title=f"Release idle {name}",
            estimated_monthly_saving=Decimal("300.00"),
            currency="EUR",
            status="implemented",
            first_seen=start + day,
            accepted_at=start + 2 * day,
            implemented_at=start + 3 * day,
        )
    return {"period": period, "sev1": sev1, "compute": compute, "framework": framework}
