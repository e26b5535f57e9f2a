from __future__ import annotations

from django.conf import settings
from django.db import models

from tenants.scoping import TenantOwnedModel

# The checklist a tenant gets when it enters onboarding: (key, title, required).
ONBOARDING_STEPS: tuple[tuple[str, str, bool], ...] = (
    ("contract_signed", "Contract and service plan signed", True),
    ("contacts_named", "Client contacts and escalation path named", True),
    ("first_inventory", "First inventory of the AI estate loaded", True),
    ("baseline_readiness", "Baseline readiness assessment completed", True),
    ("governance_owner", "AI governance owner named", True),
    ("integrations_connected", "Telemetry and ticketing integrations connected", False),
)


class OnboardingStep(TenantOwnedModel):
    key = models.SlugField(max_length=50)
    title = models.CharField(max_length=200)
    required = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.TextField(blank=True, max_length=2000)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="unique_onboarding_step")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def done(self) -> bool:
        return self.completed_at is not None
