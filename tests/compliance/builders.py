"""Builders of compliance test data: for every check, a subject that passes and one that fails.

Each builder makes its subject in ``tenant`` through the inventory services (the same
validation as the API) and returns ``(subject_type, subject)``.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from operations.incidents import services as incident_services
from operations.incidents.models import Incident
from operations.inventory.models import ComputeStatus
from tenants.scoping import tenant_scope
from tests.inventory.estate import (
    make_ai_system,
    make_dataset,
    make_deployment,
    make_gpu_node,
    make_usage,
)

TODAY = dt.date.today()
RECENT = TODAY - dt.timedelta(days=30)
STALE = TODAY - dt.timedelta(days=400)


def good_system(tenant, **fields):
    """An AI system that passes every AI-system check it is subject to."""
    values = {
        "purpose": "Scores things.",
        "business_owner": "Head of Lending",
        "technical_owner": "ML platform",
        "risk_tier": "minimal",
        "risk_reviewed_at": RECENT,
        "model_version": "1.0.0",
    }
    return make_ai_system(tenant, **{**values, **fields})


def high_system(tenant, **fields):
    values = {
        "risk_tier": "high",
        "stage": "production",
        "technical_documentation_url": "https://docs.example.com/system",
        "human_oversight": True,
        "human_overseer": "Risk committee",
        "eu_database_id": "EUDB-1",
    }
    return good_system(tenant, **{**values, **fields})


def good_deployment(tenant, **fields):
    values = {
        "environment": "production",
        "monitoring_enabled": True,
        "logging_enabled": True,
        "log_retention_days": 365,
        "runbook_url": "https://runbooks.example.com/x",
        "approved_by": "Change board",
        "model_version": "1.0.0",
    }
    ai_system = fields.pop("ai_system", None) or good_system(tenant)
    return make_deployment(tenant, ai_system=ai_system, **{**values, **fields})


def good_dataset(tenant, **fields):
    values = {
        "owner": "Data team",
        "provenance": "Core banking",
        "licence": "Internal",
        "residency_country": "DE",
        "quality_score": 90,
        "last_validated_at": timezone.now() - dt.timedelta(days=10),
    }
    return make_dataset(tenant, **{**values, **fields})


def serious_incident(tenant, *, deadline_in: dt.timedelta, notified: bool, late: bool = False):
    with tenant_scope(tenant.id):
        incident = incident_services.incident_create(
            tenant=tenant, title="Wrong decisions", category="model_quality"
        )
        now = timezone.now()
        deadline = now + deadline_in
        notified_at = None
        if notified:
            notified_at = (
                deadline + dt.timedelta(hours=1) if late else deadline - dt.timedelta(hours=1)
            )
        Incident.objects.filter(pk=incident.pk).update(
            serious=True,
            serious_kind="standard",
            aware_at=now - dt.timedelta(days=1),
            regulator_deadline=deadline,
            regulator_notified_at=notified_at,
        )
    return incident


def _system(builder, **fields):
    return lambda tenant: ("ai_system", builder(tenant, **fields))


def _deployment(**fields):
    return lambda tenant: ("deployment", good_deployment(tenant, **fields))


def _dataset(**fields):
    return lambda tenant: ("dataset", good_dataset(tenant, **fields))


def _retired_with(live: bool):
    def build(tenant):
        system = good_system(tenant)
        node = make_gpu_node(tenant, status=ComputeStatus.ACTIVE if live else ComputeStatus.RETIRED)
        make_deployment(tenant, ai_system=system, compute=node)
        from operations.inventory import services

        with tenant_scope(tenant.id):
            system = services.ai_system_transition(tenant=tenant, ai_system=system, stage="retired")
        return "ai_system", system

    return build


def _high_trained_on(validated: bool):
    def build(tenant):
        system = high_system(tenant)
        when = timezone.now() - dt.timedelta(days=10 if validated else 500)
        make_usage(tenant, ai_system=system, dataset=good_dataset(tenant, last_validated_at=when))
        return "ai_system", system

    return build


def _version_mismatch(tenant):
    system = good_system(tenant, model_version="2.0.0")
    return "deployment", good_deployment(tenant, ai_system=system, model_version="1.9.0")


def _incident(**kwargs):
    return lambda tenant: ("incident", serious_incident(tenant, **kwargs))


#: check code → (builder of a passing subject, builder of a failing subject)
CASES = {
    "ai_system.accountable_owner": (_system(good_system), _system(good_system, business_owner="")),
    "ai_system.documented_purpose": (_system(good_system), _system(good_system, purpose="")),
    "ai_system.risk_classified": (
        _system(good_system),
        _system(good_system, risk_tier="unclassified", risk_reviewed_at=None),
    ),
    "ai_system.risk_review_current": (
        _system(good_system),
        _system(good_system, risk_reviewed_at=STALE, risk_classified_at=STALE),
    ),
    "ai_system.no_prohibited_practice": (
        _system(good_system),
        _system(good_system, risk_tier="prohibited", stage="pilot"),
    ),
    "ai_system.annex_iii_high_risk": (
        _system(high_system, annex_iii_area="employment"),
        _system(good_system, annex_iii_area="employment", risk_tier="limited"),
    ),
    "ai_system.technical_documentation": (
        _system(high_system),
        _system(high_system, technical_documentation_url=""),
    ),
    "ai_system.human_oversight": (
        _system(high_system),
        _system(high_system, human_overseer=""),
    ),
    "ai_system.fundamental_rights_assessment": (
        _system(high_system, fria_required=True, fria_completed_at=RECENT),
        _system(high_system, fria_required=True),
    ),
    "ai_system.eu_database_registration": (
        _system(high_system),
        _system(high_system, eu_database_id=""),
    ),
    "ai_system.vendor_assessment_current": (
        _system(good_system, provenance="vendor", vendor="Acme AI", vendor_assessed_at=RECENT),
        _system(good_system, provenance="open_weights", vendor_assessed_at=STALE),
    ),
    "ai_system.ai_disclosure": (
        _system(good_system, user_facing=True, generative=True, ai_disclosure=True),
        _system(good_system, user_facing=True),
    ),
    "ai_system.retired_holds_no_capacity": (_retired_with(live=False), _retired_with(live=True)),
    "ai_system.training_data_validated": (
        _high_trained_on(validated=True),
        _high_trained_on(validated=False),
    ),
    "deployment.model_version_matches": (_deployment(), _version_mismatch),
    "deployment.monitoring": (_deployment(), _deployment(monitoring_enabled=False)),
    "deployment.logging_retention": (_deployment(), _deployment(log_retention_days=30)),
    "deployment.runbook": (_deployment(), _deployment(runbook_url="")),
    "deployment.production_approval": (_deployment(), _deployment(approved_by="")),
    "dataset.provenance_recorded": (_dataset(), _dataset(licence="")),
    "dataset.personal_data_residency": (
        _dataset(personal_data=True, residency_country="FR"),
        _dataset(personal_data=True, residency_country="US"),
    ),
    "incident.regulator_deadline": (
        _incident(deadline_in=dt.timedelta(days=-1), notified=True),
        _incident(deadline_in=dt.timedelta(days=-1), notified=False),
    ),
}
