"""Optimisation recommendations: what the scan found in a tenant's telemetry and inventory.

One row per (tenant, kind, subject): a re-run of the scan refreshes the row's evidence instead
of adding another (see ``services.optimisation_run_for_tenant`` for the refresh rules). Writes go
through ``operations.optimisation.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from tenants.scoping import TenantOwnedModel


class RecommendationKind(models.TextChoices):
    IDLE_GPU = "idle_gpu", "Idle GPU"
    #: One GPU of a node idle while the node's other GPUs are busy (per-GPU telemetry).
    IDLE_GPU_ON_BUSY_NODE = "idle_gpu_busy_node", "Idle GPU on a busy node"
    RIGHT_SIZE = "right_size", "Right-size"
    COST_ANOMALY = "cost_anomaly", "Cost anomaly"
    CAPACITY_FORECAST = "capacity_forecast", "Capacity forecast"
    RETIRED_CAPACITY = "retired_capacity", "Retired system holding capacity"


class RecommendationStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACCEPTED = "accepted", "Accepted"
    IMPLEMENTED = "implemented", "Implemented"
    DISMISSED = "dismissed", "Dismissed"
    #: Set by a scan, never by a person: the condition of an open one no longer holds.
    SUPERSEDED = "superseded", "Superseded (condition cleared)"


class SubjectType(models.TextChoices):
    COMPUTE = "compute", "Compute resource"
    #: One GPU (or MIG instance) of a node: subject id = the inventory GpuDevice id.
    GPU = "gpu", "GPU"
    AI_SYSTEM = "ai_system", "AI system"
    TENANT = "tenant", "Whole tenant"


# The lifecycle as actions: name -> (statuses it may start from, status it leads to).
RECOMMENDATION_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": ((RecommendationStatus.OPEN,), RecommendationStatus.ACCEPTED),
    "implement": ((RecommendationStatus.ACCEPTED,), RecommendationStatus.IMPLEMENTED),
    "dismiss": (
        (RecommendationStatus.OPEN, RecommendationStatus.ACCEPTED),
        RecommendationStatus.DISMISSED,
    ),
}


class Recommendation(TenantOwnedModel):
    kind = models.CharField(max_length=20, choices=RecommendationKind.choices)
    subject_type = models.CharField(max_length=20, choices=SubjectType.choices)
    subject_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Id of the compute resource, GPU or AI system (none: tenant).",
    )
    subject_key = models.CharField(
        max_length=100, help_text="Stable dedupe key, e.g. 'compute:12' or 'tenant'."
    )
    subject_label = models.CharField(max_length=200, help_text="Hostname or name when last seen.")
    title = models.CharField(max_length=300)
    evidence = models.JSONField(
        default=dict, blank=True, help_text="Window, figures and thresholds of the last scan."
    )
    estimated_monthly_saving = models.DecimalField(
        max_digits=14, decimal_places=2, default=0, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, default="USD")

    status = models.CharField(
        max_length=20, choices=RecommendationStatus.choices, default=RecommendationStatus.OPEN
    )
    dismissed_reason = models.TextField(blank=True, max_length=2000)
    #: Evidence and saving when it was dismissed: a refresh reopens it only on a material change.
    dismissed_evidence = models.JSONField(default=dict, blank=True)

    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by_label = models.CharField(max_length=200, blank=True)
    implemented_at = models.DateTimeField(null=True, blank=True)
    implemented_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    implemented_by_label = models.CharField(max_length=200, blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dismissed_by_label = models.CharField(max_length=200, blank=True)

    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(
        default=timezone.now, help_text="Last scan that found the condition."
    )
    refreshed_at = models.DateTimeField(default=timezone.now, help_text="Last scan that looked.")
    resolved_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a scan found the condition gone (empty while it holds).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-estimated_monthly_saving", "id"]
        constraints = [
            # The upsert key of a scan: a re-run refreshes, a redelivered job cannot duplicate.
            models.UniqueConstraint(
                fields=["tenant", "kind", "subject_key"], name="optimisation_one_per_subject"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "kind"], name="optimisation_tenant_status")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def condition_holds(self) -> bool:
        return self.resolved_at is None
