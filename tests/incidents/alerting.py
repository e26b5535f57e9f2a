"""Alert-rule test data: rules and defaults through the services, samples through telemetry
ingest (the same path as the API), all inside the tenant's scope."""

from __future__ import annotations

import datetime as dt

from operations.incidents import alerting
from operations.incidents.models import Incident, TimelineEntry
from operations.telemetry.services import telemetry_ingest_batch
from tenants.scoping import tenant_scope

T0 = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)


def rule_fields(**fields) -> dict:
    values = {
        "name": "GPU saturated",
        "metric": "gpu_utilization",
        "target": "compute",
        "condition": "above",
        "threshold": 90.0,
        "window_minutes": 15,
        "severity": "SEV3",
        "category": "performance",
    }
    return {**values, **fields}


def make_rule(tenant, **fields):
    with tenant_scope(tenant.id):
        return alerting.alert_rule_create(tenant=tenant, **rule_fields(**fields))


def make_default(**fields):
    return alerting.alert_rule_default_save(**rule_fields(**fields))


def feed(tenant, resource: str, metric: str, values, *, start: dt.datetime, step=STEP) -> None:
    """Ingest ``values`` for ``resource`` ("compute:<hostname>" / "deployment:<name>") from
    ``start``, one every ``step``."""
    samples = [
        {"resource": resource, "metric": metric, "ts": (start + i * step).isoformat(), "value": v}
        for i, value in enumerate(values)
        for v in [value]
    ]
    now = start + len(samples) * step + dt.timedelta(hours=1)
    with tenant_scope(tenant.id):
        telemetry_ingest_batch(tenant=tenant, samples=samples, now=now)


def evaluate(tenant, at: dt.datetime):
    with tenant_scope(tenant.id):
        return alerting.alert_rules_evaluate(tenant=tenant, as_of=at)


def alert_incidents(tenant) -> list[Incident]:
    with tenant_scope(tenant.id):
        return list(Incident.objects.filter(dedupe_key__startswith="alert:").order_by("pk"))


def entries(incident, kind: str) -> list[TimelineEntry]:
    with tenant_scope(incident.tenant_id):
        return list(TimelineEntry.objects.filter(incident_id=incident.pk, kind=kind))
