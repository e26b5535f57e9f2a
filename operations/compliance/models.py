"""Compliance: frameworks and their controls (global, loaded from the YAML files in
``frameworks/``), and per tenant the scans, findings, waivers and scores.

Checks are code (``checks.py``); a finding names its check by code. A tenant's finding is
unique per (check, subject): a re-run updates it instead of adding another.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwnedModel


class Framework(models.Model):
    """One version of a framework (EU AI Act, ISO/IEC 42001, NIST AI RMF). Global."""

    code = models.SlugField(max_length=50, help_text="e.g. eu-ai-act")
    version = models.CharField(max_length=50)
    title = models.CharField(max_length=200)
    publisher = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=500, blank=True)
    source_file = models.CharField(max_length=200, blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the data file.")
    loaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code", "-loaded_at"]
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="compliance_framework_version")
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.version})"


class Control(models.Model):
    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    code = models.CharField(max_length=50, help_text="e.g. art-14, A.6.2.7, GOVERN-1")
    group = models.CharField(max_length=200, blank=True)
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["framework", "position"]
        constraints = [
            models.UniqueConstraint(fields=["framework", "code"], name="compliance_control_code")
        ]

    def __str__(self) -> str:
        return f"{self.framework.code} {self.code} {self.title}"


class FindingStatus(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class CheckSeverity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class SubjectType(models.TextChoices):
    AI_SYSTEM = "ai_system", "AI system"
    DEPLOYMENT = "deployment", "Deployment"
    DATASET = "dataset", "Dataset"
    INCIDENT = "incident", "Incident"


class ComplianceScan(TenantOwnedModel):
    """One run of every check over a tenant's estate (``compliance_run_for_tenant``)."""

    job_run_id = models.BigIntegerField(
        null=True, blank=True, help_text="The background job run that made it, if any."
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    checks_run = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    waived = models.PositiveIntegerField(default=0)
    not_applicable = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0, help_text="Failing findings that now pass.")
    new_failures = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "job_run_id"],
                condition=models.Q(job_run_id__isnull=False),
                name="compliance_scan_once_per_job_run",
            )
        ]

    def __str__(self) -> str:
        return f"scan {self.pk} of tenant {self.tenant_id}"


class Finding(TenantOwnedModel):
    """The latest result of one check on one subject; first seen, last seen, resolved."""

    check_code = models.CharField(max_length=100, db_column="check")
    severity = models.CharField(max_length=10, choices=CheckSeverity.choices)
    subject_type = models.CharField(max_length=20, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    subject_label = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=FindingStatus.choices)
    detail = models.TextField(blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    failing_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When a failing finding last passed again."
    )
    # Stamped on every finding by every scan: no index and no database constraint, so that
    # the nightly re-run's update of unchanged findings stays a cheap in-page (HOT) update.
    last_scan = models.ForeignKey(
        ComplianceScan,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["check_code", "subject_type", "subject_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "check_code", "subject_type", "subject_id"],
                name="compliance_finding_per_subject",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "severity"], name="compliance_finding_status")
        ]

    def __str__(self) -> str:
        return f"{self.check_code} on {self.subject_type} {self.subject_id}: {self.status}"


class Waiver(TenantOwnedModel):
    """Accepts a check's failure (for one subject, or every subject) until it expires."""

    check_code = models.CharField(max_length=100, db_column="check")
    subject_type = models.CharField(max_length=20, choices=SubjectType.choices, blank=True)
    subject_id = models.BigIntegerField(
        null=True, blank=True, help_text="Empty: the waiver covers every subject of the check."
    )
    reason = models.TextField(max_length=4000)
    approved_by = models.CharField(max_length=200, help_text="Who accepted the risk.")
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "check_code"], name="compliance_waiver_check")]

    def __str__(self) -> str:
        subject = f"{self.subject_type} {self.subject_id}" if self.subject_id else "all subjects"
        return f"waiver of {self.check_code} ({subject}) until {self.expires_at:%Y-%m-%d}"

    @property
    def is_active(self) -> bool:
        return self.expires_at > timezone.now()


class Score(TenantOwnedModel):
    """A tenant's score in one framework after one scan; the rows over time are its history.

    ``score`` = controls passing / controls assessed × 100. A control is *assessed* when at
    least one of its checks applied to a subject (pass, fail or waived); it *passes* when none
    of those findings fails unwaived. Controls with no automated check, or whose checks were
    all not applicable, are counted in ``controls_not_assessed`` and left out of the ratio.
    Strict on purpose: one failing subject fails the control.

    ``pass_rate`` = findings passing (or waived) / findings judged × 100, over the checks
    mapped to the framework: how far remediation has come while controls still fail.
    """

    scan = models.ForeignKey(ComplianceScan, on_delete=models.CASCADE, related_name="scores")
    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="+")
    computed_at = models.DateTimeField(default=timezone.now)
    score = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    pass_rate = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    controls_total = models.PositiveIntegerField(default=0)
    controls_assessed = models.PositiveIntegerField(default=0)
    controls_passed = models.PositiveIntegerField(default=0)
    controls_failed = models.PositiveIntegerField(default=0)
    controls_not_assessed = models.PositiveIntegerField(default=0)
    failed_controls = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-computed_at", "framework__code"]
        constraints = [
            models.UniqueConstraint(fields=["scan", "framework"], name="compliance_score_per_scan")
        ]
        indexes = [
            models.Index(
                fields=["tenant", "framework", "-computed_at"], name="compliance_score_hist"
            )
        ]

    def __str__(self) -> str:
        return f"{self.framework_id}: {self.score}"
