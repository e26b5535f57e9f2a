"""Demo readiness data: tenants at different levels. Cobalt is mature (two submitted
assessments a month apart, high answers), acme is in the middle (one submitted), borealis is
mid-assessment (a draft with some answers), the others have none, and acme's five finance
peers one each (so acme sees the peer band); then a rescore for each, so every tenant has a
snapshot. Written through the services, as the tenant's people would. Idempotent: a tenant
with any assessment or snapshot is left as it is."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from operations.readiness import selectors, services
from operations.readiness.models import Assessment, ReadinessScore
from tenants.audit import AUTOMATIC_LABEL, AuditActor, audit_actor_unless_set
from tenants.models import Tenant, TenantRole
from tenants.scoping import tenant_scope
from tenants.selectors import membership_list

DEMO_ACTOR = AuditActor(label=AUTOMATIC_LABEL, source="command")
# Per demo tenant: the answer levels of its submitted assessments, oldest first (a function
# of the question's position), and how many questions its open draft has answered.
PROFILES: dict[str, dict] = {
    "cobalt": {"submitted": (lambda i: 3 if i % 3 else 2, lambda i: 4 if i % 4 else 3)},
    "acme": {"submitted": (lambda i: (1, 2, 3, 2)[i % 4],)},
    "borealis": {"draft": 10, "draft_value": lambda i: (1, 2, 1)[i % 3]},
    # acme's finance peers (seed_demo's benchmark peers), spread so the band has a width.
    "fjord": {"submitted": (lambda i: (0, 1, 1)[i % 3],)},
    "granite": {"submitted": (lambda i: (1, 2)[i % 2],)},
    "harbour": {"submitted": (lambda i: 2,)},
    "ivy": {"submitted": (lambda i: (2, 3, 3)[i % 3],)},
    "juniper": {"submitted": (lambda i: (3, 4)[i % 2],)},
}
NOTES = {
    "strategy.vision": "Strategy approved by the board; reviewed every spring.",
    "governance.risk_classification": "Register kept in the GRC tool; FRIA template adopted.",
    "ai_operations.monitoring": "Dashboards and alert rules for every production endpoint.",
}


def _person(tenant: Tenant, role: str):
    membership = membership_list(tenant=tenant).filter(role=role).first()
    return membership.user if membership is not None else None


def _answer_all(tenant, assessment, keys, value_of, user, *, limit=None) -> None:
    for index, key in enumerate(keys[:limit]):
        services.assessment_answer(
            tenant=tenant,
            assessment=assessment,
            question_key=key,
            value=value_of(index),
            note=NOTES.get(key, ""),
            evidence_url="https://intranet.example.com/ai/evidence" if key in NOTES else "",
            user=user,
        )


def _backdate(assessment: Assessment, score: ReadinessScore | None, at: dt.datetime) -> None:
    """The first cobalt assessment was a month ago: its trend starts there."""
    Assessment.objects.filter(pk=assessment.pk).update(created_at=at, submitted_at=at)
    if score is not None:
        ReadinessScore.objects.filter(pk=score.pk).update(computed_at=at)


def seed_readiness(tenant: Tenant, *, now: dt.datetime | None = None) -> dict:
    """Assessments and snapshots for ``tenant`` as its profile says; returns what was made."""
    now = now or timezone.now()
    made = {"assessments": 0, "scores": 0}
    profile = PROFILES.get(tenant.slug, {})
    with audit_actor_unless_set(DEMO_ACTOR), transaction.atomic(), tenant_scope(tenant.id):
        if Assessment.objects.exists() or ReadinessScore.objects.exists():
            return made
        framework = selectors.readiness_framework_current()
        keys = list(selectors.framework_questions(framework.definition))
        admin, member = _person(tenant, TenantRole.ADMIN), _person(tenant, TenantRole.MEMBER)
        submitted = profile.get("submitted", ())
        for number, value_of in enumerate(submitted):
            draft = services.assessment_start(tenant=tenant, user=admin)
            _answer_all(tenant, draft, keys, value_of, member if number % 2 else admin)
            services.assessment_submit(tenant=tenant, assessment=draft, user=admin)
            made["assessments"] += 1
            made["scores"] += 1
            if number < len(submitted) - 1:
                score = ReadinessScore.objects.filter(assessment=draft).first()
                _backdate(draft, score, now - dt.timedelta(days=30 * (len(submitted) - number)))
        if "draft" in profile:
            draft = services.assessment_start(tenant=tenant, user=admin)
            _answer_all(tenant, draft, keys, profile["draft_value"], member, limit=profile["draft"])
            made["assessments"] += 1
        services.readiness_rescore(tenant=tenant)
        made["scores"] += 1
    return made
