"""Writes of the readiness context: assessments (start, answer, submit) and score snapshots.

A submitted assessment is immutable: every later write is refused with
``AssessmentLocked``. Snapshots are computed from the live signals and the latest submitted
answers, and store the inputs they were computed from.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from operations.events.services import event_record
from operations.jobs.models import JobTrigger
from operations.jobs.services import job_submit
from operations.readiness import selectors
from operations.readiness.models import (
    Assessment,
    AssessmentAnswer,
    AssessmentStatus,
    ReadinessScore,
)
from operations.readiness.scoring import MAX_ANSWER, score_compute
from operations.readiness.signals import readiness_signals
from tenants import services as tenant_services
from tenants.audit import audit_record, audited_create, audited_update
from tenants.models import AuditAction
from tenants.scoping import active_scope, scoped_atomic

ONBOARDING_STEP = "baseline_readiness"
SCAN_KIND = "readiness_scan"


class ReadinessConflict(Exception):
    """The write conflicts with the assessment's state (the API answers 409)."""


class AssessmentLocked(ReadinessConflict):
    pass


def _lock(assessment: Assessment) -> Assessment:
    locked = (
        # Only the assessment's row: the framework row is shared by every tenant.
        Assessment.objects.select_for_update(of=("self",))
        .select_related("framework")
        .get(pk=assessment.pk, tenant_id=assessment.tenant_id)
    )
    if locked.status != AssessmentStatus.DRAFT:
        raise AssessmentLocked(
            f"Assessment {locked.pk} was submitted on {locked.submitted_at:%Y-%m-%d} and can no "
            "longer change; start a new assessment to update the answers."
        )
    return locked


@transaction.atomic
def assessment_start(*, tenant, user=None) -> Assessment:
    """Open the tenant's draft on the current framework version, with the answers of the last
    submitted assessment copied in (who answered them and when kept). One draft at a time."""
    with scoped_atomic(tenant.id):
        existing = selectors.assessment_draft(tenant=tenant)
        if existing is not None:
            raise ReadinessConflict(
                f"Assessment {existing.pk} is already in progress; answer and submit it first."
            )
        framework = selectors.readiness_framework_current()
        previous = selectors.assessment_last_submitted(tenant=tenant)
        try:
            with transaction.atomic():
                assessment = audited_create(
                    tenant=tenant,
                    instance=Assessment(
                        tenant=tenant, framework=framework, based_on=previous, started_by=user
                    ),
                    validate=False,  # the one-draft rule is the database's (a racing start)
                )
        except IntegrityError as exc:
            raise ReadinessConflict("Another assessment was started at the same time.") from exc
        if previous is not None:
            questions = selectors.framework_questions(framework.definition)
            AssessmentAnswer.objects.bulk_create(
                [
                    AssessmentAnswer(
                        tenant=tenant,
                        assessment=assessment,
                        question_key=answer.question_key,
                        value=answer.value,
                        note=answer.note,
                        evidence_url=answer.evidence_url,
                        answered_by_id=answer.answered_by_id,
                        answered_at=answer.answered_at,
                    )
                    for answer in selectors.assessment_answers(tenant=tenant, assessment=previous)
                    if answer.question_key in questions
                ]
            )
        return assessment


@transaction.atomic
def assessment_answer(
    *,
    tenant,
    assessment: Assessment,
    question_key: str,
    value: int | None,
    note: str = "",
    evidence_url: str = "",
    user=None,
) -> AssessmentAnswer:
    """Save one answer of a draft (partial saves: any question, any order, again and again)."""
    with scoped_atomic(tenant.id):
        assessment = _lock(assessment)
        questions = selectors.framework_questions(assessment.framework.definition)
        if question_key not in questions:
            raise ValidationError(
                {"question_key": f"'{question_key}' is not a question of this framework."}
            )
        if value is not None and not 0 <= int(value) <= MAX_ANSWER:
            raise ValidationError({"value": f"An answer is a point from 0 to {MAX_ANSWER}."})
        data = {
            "value": value,
            "note": note or "",
            "evidence_url": evidence_url or "",
            "answered_by": user if user is not None and user.is_authenticated else None,
            "answered_at": timezone.now(),
        }
        answer = AssessmentAnswer.objects.filter(
            tenant=tenant, assessment=assessment, question_key=question_key
        ).first()
        if answer is None:
            answer = audited_create(
                tenant=tenant,
                instance=AssessmentAnswer(
                    tenant=tenant, assessment=assessment, question_key=question_key, **data
                ),
            )
        else:
            answer = audited_update(tenant=tenant, instance=answer, data=data)
        # The draft's updated_at says when it was last worked on.
        Assessment.objects.filter(pk=assessment.pk).update(updated_at=timezone.now())
        return answer


@transaction.atomic
def assessment_submit(*, tenant, assessment: Assessment, user=None) -> Assessment:
    """Submit a complete draft: it becomes immutable, is scored at once, and the first one
    completes the onboarding step "baseline readiness assessment"."""
    with scoped_atomic(tenant.id):
        assessment = _lock(assessment)
        progress = selectors.assessment_progress(tenant=tenant, assessment=assessment)
        if progress["unanswered"]:
            raise ValidationError(
                {
                    "answers": (
                        f"{len(progress['unanswered'])} of {progress['questions']} questions "
                        f"are unanswered: {', '.join(progress['unanswered'])}."
                    )
                }
            )
        user = user if user is not None and user.is_authenticated else None
        audit_record(
            tenant=tenant,
            action=AuditAction.TRANSITION,
            instance=assessment,
            changes={"status": [AssessmentStatus.DRAFT, AssessmentStatus.SUBMITTED]},
        )
        assessment.status = AssessmentStatus.SUBMITTED
        assessment.submitted_by = user
        assessment.submitted_at = timezone.now()
        assessment.save(update_fields=["status", "submitted_by", "submitted_at", "updated_at"])
        tenant_services.onboarding_step_complete(
            tenant=tenant,
            key=ONBOARDING_STEP,
            user=user,
            notes=f"Readiness assessment {assessment.pk} submitted.",
        )
        readiness_rescore(tenant=tenant, triggered_by=user)
        return assessment


def _rescore_transaction(tenant_id: int):
    """Inside a job's ``run.once`` the tenant's transaction is open already: no savepoint."""
    scope = active_scope()
    if scope is not None and scope.tenant_ids == {tenant_id} and connection.in_atomic_block:
        return transaction.atomic(savepoint=False)
    return scoped_atomic(tenant_id)


def readiness_rescore(
    *, tenant, triggered_by=None, job_run_id: int | None = None, now: dt.datetime | None = None
) -> ReadinessScore:
    """A new snapshot from the live signals and the latest submitted answers, on the current
    framework version. Once per job run: a redelivered run gets the snapshot it made."""
    with _rescore_transaction(tenant.id):
        start = selectors.readiness_rescore_inputs(tenant=tenant, job_run_id=job_run_id)
        if start.done is not None:
            return start.done
        readings = readiness_signals(tenant=tenant, now=now)
        result, inputs = score_compute(
            start.framework.definition,
            answers=start.answers,
            readings=readings,
            assessment_id=start.assessment_id,
        )
        previous = selectors.readiness_level_latest(tenant=tenant)
        score = ReadinessScore.objects.create(
            tenant=tenant,
            framework=start.framework,
            assessment_id=start.assessment_id,
            computed_at=now or timezone.now(),
            overall=result.overall,
            level=result.level,
            pillars=result.pillars,
            inputs=inputs,
            job_run_id=job_run_id,
            triggered_by=triggered_by if triggered_by and triggered_by.is_authenticated else None,
        )
        if previous is None or previous["level"] != score.level:
            _level_changed_record(tenant=tenant, score=score, previous=previous)
        return score


def _level_changed_record(*, tenant, score: ReadinessScore, previous: dict | None) -> None:
    """``readiness.level_changed``, in the snapshot's transaction (the first snapshot counts:
    its previous level is null)."""
    event_record(
        tenant=tenant,
        topic="readiness.level_changed",
        payload={
            "score_id": score.pk,
            "previous_level": previous["level"] if previous else None,
            "level": score.level,
            "overall": str(score.overall),
            "previous_overall": str(previous["overall"]) if previous else None,
            "framework": f"{score.framework.code} {score.framework.version}",
            "computed_at": score.computed_at,
        },
    )


def readiness_rescore_request(*, tenant, user=None, token=None):
    """ "Rescore now": a readiness scan of ``tenant`` on the job engine (a visible, audited run)."""
    return job_submit(
        tenant=tenant,
        kind=SCAN_KIND,
        trigger=JobTrigger.USER,
        user=user if user is not None and user.is_authenticated else None,
        token=token,
    )
