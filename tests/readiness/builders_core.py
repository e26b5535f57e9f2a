"""Builders for the readiness core tests (assessments, scores, API)."""

from __future__ import annotations

from django.utils import timezone

from operations.readiness.models import (
    Assessment,
    AssessmentAnswer,
    AssessmentStatus,
    ReadinessScore,
)
from operations.readiness.selectors import framework_questions
from operations.readiness.services import readiness_rescore
from tenants.scoping import tenant_scope


def question_keys(framework) -> list[str]:
    return list(framework_questions(framework.definition))


def submitted_assessment(tenant, framework, value: int = 2, *, user=None) -> Assessment:
    """A submitted assessment with every question answered ``value``, made directly."""
    with tenant_scope(tenant.id):
        assessment = Assessment.objects.create(
            tenant=tenant,
            framework=framework,
            status=AssessmentStatus.SUBMITTED,
            submitted_at=timezone.now(),
            submitted_by=user,
        )
        AssessmentAnswer.objects.bulk_create(
            [
                AssessmentAnswer(
                    tenant=tenant, assessment=assessment, question_key=key, value=value
                )
                for key in question_keys(framework)
            ]
        )
    return assessment


def score_with_pillars(tenant, framework, pillars: dict, overall=50) -> ReadinessScore:
    """A snapshot with the given pillar scores (for benchmark arithmetic)."""
    with tenant_scope(tenant.id):
        return ReadinessScore.objects.create(
            tenant=tenant,
            framework=framework,
            overall=overall,
            level=3,
            pillars=pillars,
            inputs={"answers": {}, "signals": {}},
        )


def rescored(tenant) -> ReadinessScore:
    return readiness_rescore(tenant=tenant)
