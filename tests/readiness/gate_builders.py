"""Gate test data: a pilot that passes every gate, made through the services inside the
tenant's scope, and the rows other contexts' jobs would write (findings, forecasts, rollups)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.compliance.models import Finding
from operations.optimisation.models import Recommendation
from operations.readiness import gates
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from tenants.models import MspRole
from tenants.scoping import tenant_scope
from tests.factories import make_staff
from tests.incidents.alerting import make_rule
from tests.inventory import estate


def ready_pilot(tenant, *, rule: bool = True, **fields):
    """A pilot that passes every gate: classified, owned, a documented dataset, a monitored
    production deployment with a runbook on a GPU node that an alert rule covers."""
    values = {
        "stage": "pilot",
        "risk_tier": "limited",
        "business_owner": "Dana Okafor",
        "technical_owner": "Ravi Shah",
    }
    system = estate.make_ai_system(tenant, **{**values, **fields})
    dataset = estate.make_dataset(tenant, provenance="CRM export 2026", residency_country="GB")
    estate.make_usage(tenant, ai_system=system, dataset=dataset)
    node = estate.make_gpu_node(tenant)
    deployment = estate.make_deployment(
        tenant,
        ai_system=system,
        compute=node,
        environment="production",
        monitoring_enabled=True,
        runbook_url="https://runbooks.example.com/ai",
    )
    if rule:
        make_rule(tenant, name=f"GPU saturated {node.hostname}", resource_pattern=node.hostname)
    system.gate_parts = {"dataset": dataset, "node": node, "deployment": deployment}
    return system


def report_of(tenant, system):
    with tenant_scope(tenant.id):
        system.refresh_from_db()
        return gates.ai_system_gates(tenant=tenant, ai_system=system)


def failing_keys(tenant, system) -> list[str]:
    return [row["key"] for row in report_of(tenant, system).failing]


def make_finding(tenant, *, subject_type: str, subject_id: int, severity="critical", **fields):
    with tenant_scope(tenant.id):
        return Finding.objects.create(
            tenant=tenant,
            check_code=fields.pop("check_code", "eu_ai_act.human_oversight"),
            severity=severity,
            subject_type=subject_type,
            subject_id=subject_id,
            subject_label=fields.pop("subject_label", f"{subject_type} {subject_id}"),
            status=fields.pop("status", "fail"),
            **fields,
        )


def make_capacity_forecast(tenant, compute, **fields):
    with tenant_scope(tenant.id):
        return Recommendation.objects.create(
            tenant=tenant,
            kind="capacity_forecast",
            subject_type="compute",
            subject_id=compute.pk,
            subject_key=f"compute:{compute.pk}",
            subject_label=compute.hostname,
            title=f"{compute.hostname} reaches 90% at peak in about 12 days: plan capacity",
            **fields,
        )


def make_utilisation(tenant, compute, values: list[float], *, now=None) -> None:
    """Hourly GPU-utilisation rollups of ``compute``, the newest an hour before ``now``."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant.id):
        TelemetryRollup.objects.bulk_create(
            TelemetryRollup(
                tenant=tenant,
                resource_kind=ResourceKind.COMPUTE,
                resource_id=compute.pk,
                metric=METRICS_BY_NAME["gpu_utilization"].code,
                bucket=hour - dt.timedelta(hours=index + 1),
                min_value=value,
                max_value=value,
                avg_value=value,
                sample_count=12,
                computed_at=now,
            )
            for index, value in enumerate(values)
        )


def grant_override(tenant, system, *, reason="Board accepted the risk for the Q1 launch."):
    admin = make_staff(role=MspRole.ADMIN)
    with tenant_scope(tenant.id):
        system.refresh_from_db()
        return gates.ai_system_gate_override(
            tenant=tenant, ai_system=system, user=admin, reason=reason
        )
