from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tenants.models.identity import validate_timezone

# Migration 0001 names the validator by this path.
_validate_timezone = validate_timezone


class TenantStatus(models.TextChoices):
    PROSPECT = "prospect", "Prospect"
    ONBOARDING = "onboarding", "Onboarding"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    OFFBOARDED = "offboarded", "Offboarded"


# The lifecycle: where each status may go next.
TENANT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    TenantStatus.PROSPECT: (TenantStatus.ONBOARDING, TenantStatus.OFFBOARDED),
    TenantStatus.ONBOARDING: (TenantStatus.ACTIVE, TenantStatus.OFFBOARDED),
    TenantStatus.ACTIVE: (TenantStatus.SUSPENDED, TenantStatus.OFFBOARDED),
    TenantStatus.SUSPENDED: (TenantStatus.ACTIVE, TenantStatus.OFFBOARDED),
    TenantStatus.OFFBOARDED: (),
}


class Tenant(models.Model):
    """A client organisation. Not tenant-owned itself: it *is* the boundary."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    status = models.CharField(
        max_length=20, choices=TenantStatus.choices, default=TenantStatus.PROSPECT, db_index=True
    )
    industry = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True, help_text="Home region, e.g. eu-west.")
    data_residency = models.CharField(
        max_length=200, blank=True, help_text="Approved data residency, e.g. 'EU' or 'DE,FR'."
    )
    require_mfa = models.BooleanField(
        "require two-factor sign-in",
        default=False,
        help_text="Every user of this tenant must use an authenticator app to sign in. "
        "MSP staff always must.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allowed_transitions(self) -> tuple[str, ...]:
        return TENANT_TRANSITIONS[self.status]


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1 (critical)"
    SEV2 = "SEV2", "SEV2 (major)"
    SEV3 = "SEV3", "SEV3 (minor)"
    SEV4 = "SEV4", "SEV4 (low)"


class Coverage(models.TextChoices):
    ALWAYS = "24x7", "24x7"
    BUSINESS_HOURS = "business_hours", "Business hours"


class PlanTier(models.TextChoices):
    ESSENTIAL = "essential", "Essential"
    PROFESSIONAL = "professional", "Professional"
    ENTERPRISE = "enterprise", "Enterprise"


def _validate_business_days(value) -> None:
    if (
        not isinstance(value, list)
        or not value
        or any(not isinstance(day, int) or day < 0 or day > 6 for day in value)
    ):
        raise ValidationError("Business days are a non-empty list of 0 (Monday) to 6 (Sunday).")
    if len(set(value)) != len(value):
        raise ValidationError("Business days must not repeat.")


_MINUTES = [MinValueValidator(1), MaxValueValidator(60 * 24 * 60)]


class ServicePlan(models.Model):
    """The client's contract: SLA targets per severity and the hours they apply in."""

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, related_name="plan")
    tier = models.CharField(max_length=20, choices=PlanTier.choices, default=PlanTier.PROFESSIONAL)
    coverage = models.CharField(max_length=20, choices=Coverage.choices, default=Coverage.ALWAYS)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    business_days = models.JSONField(
        default=list, validators=[_validate_business_days], help_text="0 = Monday ... 6 = Sunday"
    )
    business_hours_start = models.TimeField(default="09:00")
    business_hours_end = models.TimeField(default="17:00")
    frameworks_in_scope = models.JSONField(default=list, blank=True)
    sev1_acknowledge_minutes = models.PositiveIntegerField(default=15, validators=_MINUTES)
    sev1_resolve_minutes = models.PositiveIntegerField(default=240, validators=_MINUTES)
    sev2_acknowledge_minutes = models.PositiveIntegerField(default=30, validators=_MINUTES)
    sev2_resolve_minutes = models.PositiveIntegerField(default=480, validators=_MINUTES)
    sev3_acknowledge_minutes = models.PositiveIntegerField(default=240, validators=_MINUTES)
    sev3_resolve_minutes = models.PositiveIntegerField(default=2880, validators=_MINUTES)
    sev4_acknowledge_minutes = models.PositiveIntegerField(default=480, validators=_MINUTES)
    sev4_resolve_minutes = models.PositiveIntegerField(default=7200, validators=_MINUTES)

    def __str__(self) -> str:
        return f"{self.tenant} {self.get_tier_display()} ({self.get_coverage_display()})"

    def clean(self) -> None:
        if self.coverage == Coverage.BUSINESS_HOURS:
            if not self.business_days:
                raise ValidationError({"business_days": "Business-hours coverage needs days."})
            if self.business_hours_start >= self.business_hours_end:
                raise ValidationError(
                    {"business_hours_end": "Business hours must end after they start."}
                )
        for severity in Severity.values:
            ack, resolve = self.sla_target(severity)
            if ack > resolve:
                raise ValidationError(
                    {f"{severity.lower()}_acknowledge_minutes": "Must not exceed resolve minutes."}
                )

    def sla_target(self, severity: str) -> tuple[int, int]:
        """(acknowledge minutes, resolve minutes) for a severity such as ``"SEV1"``."""
        prefix = severity.lower()
        return getattr(self, f"{prefix}_acknowledge_minutes"), getattr(
            self, f"{prefix}_resolve_minutes"
        )


class TenantRole(models.TextChoices):
    ADMIN = "tenant_admin", "Tenant admin"
    MEMBER = "tenant_member", "Tenant member"
    VIEWER = "tenant_viewer", "Tenant viewer"


class Membership(models.Model):
    """A client user's place in exactly one tenant."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=20, choices=TenantRole.choices, default=TenantRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tenant", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} as {self.role}"


class StaffAssignment(models.Model):
    """An MSP engineer or analyst assigned to a tenant's account team."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_assignments"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="staff_assignments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="unique_staff_assignment")
        ]
        ordering = ["tenant", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} on {self.tenant}"
