"""Readiness: versioned frameworks (global, loaded from ``frameworks/``), and per tenant the
assessments with their answers, the score snapshots, and the overrides of pilot → production
gates.

A score snapshot keeps the inputs that produced it (answers and signal values) and the
framework version it was computed with, so it can be explained and redrawn as a trend; a new
framework version never rewrites an old snapshot.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwnedModel


class ReadinessFramework(models.Model):
    """One version of a readiness framework: pillars, questions, signals and levels. Global."""

    code = models.SlugField(max_length=50, help_text="e.g. ai-readiness")
    version = models.CharField(max_length=50)
    title = models.CharField(max_length=200)
    definition = models.JSONField(
        default=dict, help_text="The framework file as loaded: pillars, questions, signals, levels."
    )
    source_file = models.CharField(max_length=200, blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the data file.")
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code", "-loaded_at"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="readiness_framework_version")
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.version})"


class AssessmentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class Assessment(TenantOwnedModel):
    """A tenant's answers to one framework version; immutable once submitted."""

    framework = models.ForeignKey(
        ReadinessFramework, on_delete=models.PROTECT, related_name="assessments"
    )
    status = models.CharField(
        max_length=20, choices=AssessmentStatus.choices, default=AssessmentStatus.DRAFT
    )
    based_on = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The submitted assessment this one started from.",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One assessment in progress per tenant: the questionnaire has one draft to resume.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(status="draft"),
                name="readiness_one_draft_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"assessment {self.pk} ({self.status}) of tenant {self.tenant_id}"


class AssessmentAnswer(TenantOwnedModel):
    """One answer: a level on the question's scale, a note and an evidence link; who and when."""

    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="answers")
    question_key = models.CharField(max_length=100)
    value = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="A point on the question's scale; empty when unanswered."
    )
    note = models.TextField(blank=True, max_length=4000)
    evidence_url = models.URLField(max_length=500, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["assessment", "question_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "question_key"], name="readiness_answer_per_question"
            )
        ]

    def __str__(self) -> str:
        return f"{self.question_key}={self.value}"


class ReadinessScore(TenantOwnedModel):
    """A score snapshot: per pillar and overall, the level, and the inputs that produced it."""

    framework = models.ForeignKey(
        ReadinessFramework, on_delete=models.PROTECT, related_name="scores"
    )
    assessment = models.ForeignKey(
        Assessment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="scores",
        help_text="The submitted assessment whose answers were used, if any.",
    )
    computed_at = models.DateTimeField(default=timezone.now, db_index=True)
    overall = models.DecimalField(max_digits=5, decimal_places=1)
    level = models.PositiveSmallIntegerField()
    pillars = models.JSONField(default=dict, help_text="{pillar key: score 0–100 or null}")
    inputs = models.JSONField(
        default=dict, help_text="The answers and signal values this score was computed from."
    )
    job_run_id = models.BigIntegerField(
        null=True, blank=True, help_text="The background job run that made it, if any."
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-computed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "job_run_id"],
                condition=models.Q(job_run_id__isnull=False),
                name="readiness_score_once_per_job_run",
            )
        ]

    def __str__(self) -> str:
        return f"{self.overall} (level {self.level}) for tenant {self.tenant_id}"


class GateOverride(TenantOwnedModel):
    """An msp_admin's decision to let an AI system into production despite failing gates."""

    ai_system = models.ForeignKey(
        "inventory.AISystem", on_delete=models.CASCADE, related_name="gate_overrides"
    )
    failing_criteria = models.JSONField(
        default=list, help_text="The criteria that failed when the override was granted."
    )
    reason = models.TextField(max_length=4000)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-granted_at", "-id"]

    def __str__(self) -> str:
        return f"override for AI system {self.ai_system_id}"
