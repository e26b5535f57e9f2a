"""Incidents: what broke for a client, who owns it, the contract's clocks and the timeline.

Every model is tenant-owned except ``AlertRuleDefault``, the MSP-wide alert rules (which carry
no tenant at all). Writes go through ``operations.incidents.services``; nothing here has
behaviour beyond small read-only helpers.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from operations.inventory.models import Environment
from operations.telemetry.metrics import (
    METRICS_BY_NAME,
    RESOURCE_KIND_BY_NAME,
    telemetry_sampling_interval,
)
from tenants.models import Severity
from tenants.scoping import TenantOwnedModel


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    INVESTIGATING = "investigating", "Investigating"
    MITIGATED = "mitigated", "Mitigated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES: tuple[str, ...] = (
    IncidentStatus.TRIGGERED,
    IncidentStatus.ACKNOWLEDGED,
    IncidentStatus.INVESTIGATING,
    IncidentStatus.MITIGATED,
)

# The lifecycle as actions: name -> (statuses it may start from, status it leads to).
# Resolving is possible from any open status (a false alarm, an alert that cleared by itself);
# reopening is possible from resolved only; closed is final.
INCIDENT_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "acknowledge": ((IncidentStatus.TRIGGERED,), IncidentStatus.ACKNOWLEDGED),
    "investigate": (
        (IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED),
        IncidentStatus.INVESTIGATING,
    ),
    "mitigate": (
        (IncidentStatus.ACKNOWLEDGED, IncidentStatus.INVESTIGATING),
        IncidentStatus.MITIGATED,
    ),
    "resolve": (OPEN_STATUSES, IncidentStatus.RESOLVED),
    "close": ((IncidentStatus.RESOLVED,), IncidentStatus.CLOSED),
    "reopen": ((IncidentStatus.RESOLVED,), IncidentStatus.INVESTIGATING),
}

# Waiting on the client pauses the resolve clock; only an acknowledged, open incident waits.
WAITABLE_STATUSES: tuple[str, ...] = (
    IncidentStatus.ACKNOWLEDGED,
    IncidentStatus.INVESTIGATING,
    IncidentStatus.MITIGATED,
)


class IncidentCategory(models.TextChoices):
    OUTAGE = "outage", "Outage"
    PERFORMANCE = "performance", "Performance degradation"
    MODEL_QUALITY = "model_quality", "Model quality or drift"
    DATA_QUALITY = "data_quality", "Data quality"
    SECURITY = "security", "Security"
    COMPLIANCE = "compliance", "Compliance"
    COST_ANOMALY = "cost_anomaly", "Cost anomaly"


class IncidentSource(models.TextChoices):
    PORTAL = "portal", "Portal"
    API = "api", "API"
    ADMIN = "admin", "MSP console"
    ALERT_RULE = "alert_rule", "Alert rule"
    COMPLIANCE_CHECK = "compliance_check", "Compliance check"


class SeriousIncidentKind(models.TextChoices):
    """EU AI Act Art. 73: how soon the market surveillance authority must be told."""

    STANDARD = "standard", "Serious incident (15 days)"
    DEATH = "death", "Death of a person may have been caused (10 days)"
    CRITICAL_INFRASTRUCTURE = (
        "critical_infrastructure",
        "Serious and irreversible disruption of critical infrastructure (2 days)",
    )
    WIDESPREAD_INFRINGEMENT = "widespread_infringement", "Widespread infringement (2 days)"


# Art. 73(2), (4) and (3): days from the moment the provider became aware.
REGULATOR_DEADLINE_DAYS: dict[str, int] = {
    SeriousIncidentKind.STANDARD: 15,
    SeriousIncidentKind.DEATH: 10,
    SeriousIncidentKind.CRITICAL_INFRASTRUCTURE: 2,
    SeriousIncidentKind.WIDESPREAD_INFRINGEMENT: 2,
}


class IncidentCounter(TenantOwnedModel):
    """The last incident number handed out in a tenant (one row per tenant, locked to allocate)."""

    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="incidents_counter_tenant")]

    def __str__(self) -> str:
        return f"tenant {self.tenant_id}: {self.last_number}"


class Incident(TenantOwnedModel):
    number = models.PositiveIntegerField(editable=False)
    reference = models.CharField(max_length=80, editable=False, help_text="e.g. ACME-42")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=10000)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    category = models.CharField(max_length=20, choices=IncidentCategory.choices)
    status = models.CharField(
        max_length=20, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED
    )
    source = models.CharField(
        max_length=20, choices=IncidentSource.choices, default=IncidentSource.API
    )
    dedupe_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="Groups repeats: at most one open incident per key in a tenant.",
    )

    ai_systems = models.ManyToManyField(
        "inventory.AISystem", through="IncidentAISystem", related_name="+", blank=True
    )
    deployments = models.ManyToManyField(
        "inventory.Deployment", through="IncidentDeployment", related_name="+", blank=True
    )
    compute = models.ManyToManyField(
        "inventory.ComputeResource", through="IncidentCompute", related_name="+", blank=True
    )

    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reporter_label = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    mitigated_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    # SLA clocks: targets in working minutes, the resulting deadlines, and when they ran out.
    ack_target_minutes = models.PositiveIntegerField(default=0)
    resolve_target_minutes = models.PositiveIntegerField(default=0)
    ack_due_at = models.DateTimeField(null=True, blank=True)
    resolve_due_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while the clock is paused."
    )
    ack_breached_at = models.DateTimeField(null=True, blank=True)
    resolve_breached_at = models.DateTimeField(null=True, blank=True)
    waiting_since = models.DateTimeField(
        null=True, blank=True, help_text="Waiting on the client since (the resolve clock pauses)."
    )
    sla_paused = models.DurationField(
        default=dt.timedelta(0), help_text="Working time excluded from the resolve clock."
    )

    # EU AI Act Art. 73.
    serious = models.BooleanField(default=False, help_text="Serious AI incident (Art. 73).")
    serious_kind = models.CharField(max_length=30, choices=SeriousIncidentKind.choices, blank=True)
    aware_at = models.DateTimeField(null=True, blank=True)
    regulator_deadline = models.DateTimeField(null=True, blank=True)
    regulator_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "number"], name="incidents_number_per_tenant"
            ),
            models.UniqueConstraint(
                fields=["tenant", "dedupe_key"],
                condition=models.Q(status__in=OPEN_STATUSES) & ~models.Q(dedupe_key=""),
                name="incidents_one_open_per_dedupe_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status"], name="incidents_tenant_status"),
            models.Index(fields=["tenant", "-created_at"], name="incidents_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_waiting_on_client(self) -> bool:
        return self.waiting_since is not None

    @property
    def regulator_overdue(self) -> bool:
        return bool(
            self.serious
            and self.regulator_notified_at is None
            and self.regulator_deadline is not None
            and self.regulator_deadline < timezone.now()
        )


class IncidentAISystem(TenantOwnedModel):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    ai_system = models.ForeignKey("inventory.AISystem", on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = "incident's affected AI system"
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "ai_system"], name="incidents_ai_system_once"
            )
        ]


class IncidentDeployment(TenantOwnedModel):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(
        "inventory.Deployment", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "incident's affected deployment"
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "deployment"], name="incidents_deployment_once"
            )
        ]


class IncidentCompute(TenantOwnedModel):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="+")
    compute = models.ForeignKey(
        "inventory.ComputeResource", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "incident's affected compute"
        constraints = [
            models.UniqueConstraint(fields=["incident", "compute"], name="incidents_compute_once")
        ]


class TimelineKind(models.TextChoices):
    CREATED = "created", "Created"
    STATUS = "status", "Status change"
    ASSIGNMENT = "assignment", "Assignment"
    SEVERITY = "severity", "Severity change"
    COMMENT = "comment", "Comment"
    ACK_BREACH = "ack_breach", "Acknowledge SLA breached"
    RESOLVE_BREACH = "resolve_breach", "Resolve SLA breached"
    PAUSED = "paused", "Waiting on client"
    RESUMED = "resumed", "Resumed"
    SERIOUS = "serious", "Serious incident assessment"
    ALERT = "alert", "Alert"


BREACH_KINDS = (TimelineKind.ACK_BREACH, TimelineKind.RESOLVE_BREACH)


class TimelineEntry(TenantOwnedModel):
    """One line of an incident's story. ``internal`` ones are for MSP staff only."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=20, choices=TimelineKind.choices)
    internal = models.BooleanField(default=False)
    body = models.TextField(max_length=10000)
    data = models.JSONField(default=dict, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "timeline entries"
        constraints = [
            # The second wall behind the breach job's conditional update: one entry per breach.
            models.UniqueConstraint(
                fields=["incident", "kind"],
                condition=models.Q(kind__in=BREACH_KINDS),
                name="incidents_one_entry_per_breach",
            )
        ]
        indexes = [models.Index(fields=["incident", "created_at"], name="incidents_timeline_order")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.body[:60]}"


class Postmortem(TenantOwnedModel):
    """The write-up of a resolved SEV1/SEV2 incident, shared with the client."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    summary = models.TextField(max_length=10000)
    impact = models.TextField(blank=True, max_length=10000)
    timeline_excerpt = models.TextField(blank=True, max_length=20000)
    root_cause = models.TextField(blank=True, max_length=10000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by_label = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"Postmortem of incident {self.incident_id}"


class PostmortemActionItem(TenantOwnedModel):
    postmortem = models.ForeignKey(
        Postmortem, on_delete=models.CASCADE, related_name="action_items"
    )
    position = models.PositiveSmallIntegerField(default=0)
    description = models.CharField(max_length=500)
    owner = models.CharField(max_length=200)
    due_date = models.DateField(null=True, blank=True)
    done = models.BooleanField(default=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.description[:80]


# --- Alert rules on telemetry --------------------------------------------------------------------


class AlertCondition(models.TextChoices):
    ABOVE = "above", "Above the threshold"
    BELOW = "below", "Below the threshold"
    # Silence: no sample of the metric for the whole window (no threshold).
    NO_DATA = "no_data", "No data for the window"


class AlertTarget(models.TextChoices):
    COMPUTE = "compute", "Compute resources"
    DEPLOYMENT = "deployment", "Model deployments"
    # A GPU metric judged per GPU of the selected nodes (their per-GPU series), not the node's
    # aggregate: one verdict, incident and auto-resolve per GPU.
    GPU = "gpu", "Each GPU of the compute resources"


MAX_ALERT_WINDOW_MINUTES = 1440


def alert_window_error(window_minutes: int | None) -> str:
    """Why a rule with this window could never decide (shorter than two sampling intervals: the
    window needs a sample in each half), or "" when it can."""
    shortest = 2 * telemetry_sampling_interval()
    # In seconds, not a timedelta: a window past timedelta's range is the field's own error.
    if window_minutes is None or window_minutes * 60 >= shortest.total_seconds():
        return ""
    interval = telemetry_sampling_interval().total_seconds()
    return (
        f"A window of {window_minutes} min is shorter than twice the telemetry sampling "
        f"interval ({interval:g} s): it could never decide. Use at least "
        f"{math.ceil(2 * interval / 60)} min."
    )


class AlertRuleBase(models.Model):
    """What an alert rule says, shared by tenant rules and MSP-wide defaults.

    The resource filter is plain text, so a default (which has no tenant) can carry one too:
    ``resource_pattern`` is a case-insensitive glob on the compute hostname or deployment name
    (no wildcard: one resource), ``site_code`` the site's code, ``gpu_model`` a part of the GPU
    model (compute), ``environment`` the deployment's environment. Empty means any. A rule
    aimed at each GPU selects nodes the same way (hostname, site, GPU model) and judges each of
    their GPUs.
    """

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=2000)
    enabled = models.BooleanField(default=True)
    metric = models.CharField(max_length=50, help_text="A metric from the telemetry catalogue.")
    target = models.CharField(
        max_length=20,
        choices=AlertTarget.choices,
        default=AlertTarget.COMPUTE,
        help_text=(
            "Compute: the node's aggregate series. Each GPU: every GPU of the selected nodes on "
            "its own (GPU metrics only), one incident per GPU."
        ),
    )
    resource_pattern = models.CharField(
        max_length=200, blank=True, help_text="Glob on hostname or deployment name, e.g. gpu-*."
    )
    site_code = models.CharField(max_length=50, blank=True)
    gpu_model = models.CharField(
        max_length=100, blank=True, help_text="Contains (compute and each-GPU rules)."
    )
    environment = models.CharField(
        max_length=20, blank=True, help_text="Deployment environment (deployments only)."
    )
    condition = models.CharField(max_length=10, choices=AlertCondition.choices)
    threshold = models.FloatField(
        null=True, blank=True, help_text="For above and below; a no-data rule has none."
    )
    window_minutes = models.PositiveIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_ALERT_WINDOW_MINUTES)],
        help_text=(
            "The condition must hold (or have cleared) for this long; for no data, the silence "
            "that fires. At least twice the telemetry sampling interval."
        ),
    )
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    category = models.CharField(
        max_length=20, choices=IncidentCategory.choices, default=IncidentCategory.PERFORMANCE
    )
    auto_resolve = models.BooleanField(
        default=True, help_text="Resolve the incident once the condition cleared for the window."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        metric = METRICS_BY_NAME.get(self.metric)
        if metric is None:
            errors["metric"] = (
                f"Unknown metric '{self.metric}'; see /api/v1/telemetry/metrics for the catalogue."
            )
        elif RESOURCE_KIND_BY_NAME.get(self.target) not in metric.kinds:
            errors["metric"] = (
                f"{self.metric} is not reported per GPU: aim the rule at compute resources."
                if self.target == AlertTarget.GPU
                else f"{self.metric} is not reported by {self.target} resources."
            )
        if self.condition == AlertCondition.NO_DATA:
            if self.threshold is not None:
                errors["threshold"] = "A no-data rule has no threshold: leave it empty."
        elif self.threshold is None:
            errors["threshold"] = "This condition needs a threshold."
        elif not math.isfinite(self.threshold):
            errors["threshold"] = "The threshold must be a finite number."
        elif metric is not None and not metric.minimum <= self.threshold <= metric.maximum:
            errors["threshold"] = (
                f"{self.metric} ranges from {metric.minimum:g} to {metric.maximum:g}"
                f" {metric.unit}; a threshold outside it would never change state."
            )
        window_error = alert_window_error(self.window_minutes)
        if window_error:
            errors["window_minutes"] = window_error
        if self.gpu_model and self.target not in (AlertTarget.COMPUTE, AlertTarget.GPU):
            errors["gpu_model"] = "Only compute resources have a GPU model."
        if self.environment:
            if self.target != AlertTarget.DEPLOYMENT:
                errors["environment"] = "Only deployments have an environment."
            elif self.environment not in Environment.values:
                errors["environment"] = f"'{self.environment}' is not one of {Environment.values}."
        if errors:
            raise ValidationError(errors)


class AlertRuleDefault(AlertRuleBase):
    """An MSP-wide rule every tenant gets unless it overrides or disables it (not tenant-owned:
    it has no tenant; managed by MSP admins)."""

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "MSP-wide alert rule"

    @property
    def dedupe_prefix(self) -> str:
        return f"alert:d{self.pk}"


class AlertRule(TenantOwnedModel, AlertRuleBase):
    """A tenant's own alert rule, or its override of an MSP-wide default (``default_rule``).

    An override replaces the default for this tenant; a disabled override switches it off.
    """

    default_rule = models.ForeignKey(
        AlertRuleDefault,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="overrides",
        help_text="The MSP-wide default this rule overrides (or disables, when not enabled).",
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "default_rule"],
                condition=models.Q(default_rule__isnull=False),
                name="incidents_one_override_per_default",
            )
        ]
        indexes = [models.Index(fields=["tenant", "enabled"], name="incidents_alert_rule_enabled")]

    @property
    def dedupe_prefix(self) -> str:
        # An override continues the default's incidents: same key, same open incident.
        if self.default_rule_id is not None:
            return f"alert:d{self.default_rule_id}"
        return f"alert:r{self.pk}"
