"""Incident test data, made through the services inside the tenant's scope."""

from __future__ import annotations

import datetime as dt

from operations.incidents import services
from operations.incidents.models import Incident
from tenants.scoping import tenant_scope


def make_incident(tenant, *, at: dt.datetime | None = None, **fields) -> Incident:
    fields.setdefault("title", "Inference latency above target")
    fields.setdefault("category", "performance")
    fields.setdefault("severity", "SEV2")
    with tenant_scope(tenant.id):
        return services.incident_create(tenant=tenant, at=at, **fields)


def act(tenant, service, incident, **kwargs):
    """Run an incident service in the tenant's scope and return what it returns."""
    with tenant_scope(tenant.id):
        return service(tenant=tenant, incident=incident, **kwargs)


def fresh(incident: Incident) -> Incident:
    with tenant_scope(incident.tenant_id):
        return Incident.objects.get(pk=incident.pk)
