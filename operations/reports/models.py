"""Reports: a tenant's monthly service report and quarterly business review, each version a row
with its stored HTML and PDF files and their SHA-256 checksums; and the compliance evidence
pack of a framework and period, a stored zip with its SHA-256.

A published row is immutable (a database trigger refuses any UPDATE of it); generating the same
period again makes a new version. A quarterly review is a staff-only draft until published.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwnedModel


class ReportKind(models.TextChoices):
    MONTHLY = "monthly", "Monthly service report"
    QUARTERLY = "quarterly", "Quarterly business review"
    EVIDENCE_PACK = "evidence_pack", "Compliance evidence pack"


class ReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class ReportFormat(models.TextChoices):
    HTML = "html", "HTML"
    PDF = "pdf", "PDF"
    ZIP = "zip", "ZIP"


class Report(TenantOwnedModel):
    kind = models.CharField(max_length=20, choices=ReportKind.choices)
    period_start = models.DateField(help_text="First day of the period, in the tenant's zone.")
    period_end = models.DateField(help_text="First day after the period.")
    period_label = models.CharField(
        max_length=30, help_text="e.g. 2026-11, 2026-Q4 or 2026-10-01..2026-12-31"
    )
    framework = models.CharField(
        max_length=50, blank=True, help_text="An evidence pack's framework code, e.g. eu-ai-act."
    )
    version = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=20, choices=ReportStatus.choices, default=ReportStatus.DRAFT
    )
    title = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC")
    summary = models.TextField(blank=True, max_length=10000, help_text="The MSP's summary.")
    proposals = models.TextField(
        blank=True, max_length=10000, help_text="What the MSP proposes next (one per line)."
    )
    figures = models.JSONField(default=dict, help_text="The figures the document was drawn from.")
    html_file = models.FileField(max_length=300, blank=True)
    html_sha256 = models.CharField(max_length=64, blank=True)
    html_size = models.PositiveIntegerField(default=0)
    pdf_file = models.FileField(max_length=300, blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    pdf_size = models.PositiveIntegerField(default=0)
    pdf_pages = models.PositiveIntegerField(default=0)
    pdf_missing_reason = models.CharField(max_length=300, blank=True)
    zip_file = models.FileField(max_length=300, blank=True)
    zip_sha256 = models.CharField(max_length=64, blank=True)
    zip_size = models.PositiveIntegerField(default=0)
    job_run_id = models.BigIntegerField(null=True, blank=True, help_text="The run that made it.")
    requested_by_label = models.CharField(max_length=200, blank=True)
    generated_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-period_start", "kind", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "framework", "period_start", "period_end", "version"],
                name="reports_one_version_per_document",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "kind", "-period_start"], name="reports_tenant_period")
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    @property
    def is_published(self) -> bool:
        return self.status == ReportStatus.PUBLISHED
