"""Demo data for the pilot → production gates (acme): two pilots blocked for different reasons
(a high-risk pilot without its fundamental-rights impact assessment; the advisor copilot with an
open SEV2 incident) and a third let through by an MSP admin's override with a reason.

``seed_gates(tenant, granted_by=)`` is idempotent: it looks everything up by name first, and
writes through the inventory, incidents and readiness services (audited as demo data).
"""

from __future__ import annotations

from django.db import transaction

from operations.incidents import selectors as incident_selectors
from operations.incidents import services as incident_services
from operations.inventory import selectors as inventory_selectors
from operations.inventory import services as inventory
from operations.readiness.gates import ai_system_gate_override, ai_system_gates
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.scoping import tenant_scope

DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")
ADVISOR_INCIDENT_KEY = "demo:gates:advisor-copilot"

# name → (system fields, dataset usage, deployment fields)
_PILOTS = {
    "Mortgage pre-approval assistant": (
        {
            "purpose": "Pre-approves mortgage applications for an underwriter to confirm.",
            "risk_tier": "high",
            "annex_iii_area": "essential_services",
            "business_owner": "Head of Mortgages",
            "technical_owner": "Model risk engineering",
            "personal_data": True,
            "human_oversight": True,
            "human_overseer": "Mortgage underwriting",
            "fria_required": True,
        },
        [("Loan applications 2019-2025", "training")],
        {
            "name": "mortgage-assistant-staging",
            "compute": "gpu-main-01",
            "environment": "staging",
            "monitoring_enabled": True,
            "runbook_url": "https://runbooks.example.com/ai/mortgage-assistant",
        },
    ),
    "KYC document reader": (
        {
            "purpose": "Reads passports and utility bills for know-your-customer checks.",
            "risk_tier": "limited",
            "provenance": "vendor",
            "vendor": "DocuSense",
            "business_owner": "Head of Onboarding",
            "technical_owner": "Platform engineering",
            "personal_data": True,
        },
        [("Synthetic fraud scenarios", "evaluation")],
        {
            "name": "kyc-reader-staging",
            "compute": "llm-endpoint",
            "environment": "staging",
            "monitoring_enabled": True,
            "runbook_url": "https://runbooks.example.com/ai/kyc-reader",
        },
    ),
}
OVERRIDE_REASON = (
    "DocuSense's evaluation data is synthetic and has no residency; the vendor contract and "
    "its DPA cover the production data. Approved by the risk committee on the onboarding call."
)


def _by_name(rows) -> dict:
    return {getattr(row, "name", None) or getattr(row, "hostname", None): row for row in rows}


def _ensure_pilot(tenant, name: str, estate: dict):
    fields, usage, deployment = _PILOTS[name]
    system = _by_name(estate["ai_systems"]).get(name)
    if system is not None:
        return system
    system = inventory.ai_system_create(tenant=tenant, name=name, stage="pilot", **fields)
    datasets = _by_name(estate["datasets"])
    inventory.ai_system_set_datasets(
        tenant=tenant,
        ai_system=system,
        usage=[(datasets[dataset], kind) for dataset, kind in usage if dataset in datasets],
    )
    compute = _by_name(estate["compute"]).get(f"{tenant.slug}-{deployment['compute']}")
    inventory.deployment_create(
        tenant=tenant,
        ai_system=system,
        model_version="0.9.0",
        **{**deployment, "compute": compute},
    )
    return system


def seed_gates(tenant, *, granted_by=None) -> dict:
    """Make the gate demo of ``tenant`` (the finance estate); what it made, by kind."""
    made = {"pilots": 0, "incidents": 0, "overrides": 0}
    with audit_actor_unless_set(DEMO_ACTOR), tenant_scope(tenant.id), transaction.atomic():
        estate = inventory_selectors.inventory_querysets(tenant=tenant)
        estate = {name: list(rows) for name, rows in estate.items()}
        systems = _by_name(estate["ai_systems"])
        for name in _PILOTS:
            if name not in systems:
                systems[name] = _ensure_pilot(tenant, name, estate)
                made["pilots"] += 1
        advisor = systems.get("Advisor copilot")
        if advisor is not None and not incident_selectors.incident_with_dedupe_key_exists(
            tenant=tenant, dedupe_key=ADVISOR_INCIDENT_KEY
        ):
            deployments = [row for row in estate["deployments"] if row.ai_system_id == advisor.pk]
            incident_services.incident_create(
                tenant=tenant,
                title="Advisor copilot cites withdrawn products in its drafts",
                category="model_quality",
                severity="SEV2",
                description="Relationship managers report drafts quoting products withdrawn "
                "in October; the retrieval index was not refreshed.",
                dedupe_key=ADVISOR_INCIDENT_KEY,
                ai_systems=[advisor],
                deployments=deployments,
            )
            made["incidents"] += 1
        reader = systems["KYC document reader"]
        report = ai_system_gates(tenant=tenant, ai_system=reader)
        if granted_by is not None and report.override is None and not report.passed:
            ai_system_gate_override(
                tenant=tenant, ai_system=reader, user=granted_by, reason=OVERRIDE_REASON
            )
            made["overrides"] += 1
    return made
