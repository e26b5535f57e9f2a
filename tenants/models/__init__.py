from tenants.models.audit import AuditAction, AuditEvent
from tenants.models.identity import MspRole, User, validate_timezone
from tenants.models.onboarding import ONBOARDING_STEPS, OnboardingStep
from tenants.models.tenant import (
    TENANT_TRANSITIONS,
    Coverage,
    Membership,
    PlanTier,
    ServicePlan,
    Severity,
    StaffAssignment,
    Tenant,
    TenantRole,
    TenantStatus,
)
from tenants.models.tokens import ApiToken, TokenScope

__all__ = [
    "ONBOARDING_STEPS",
    "TENANT_TRANSITIONS",
    "ApiToken",
    "AuditAction",
    "AuditEvent",
    "Coverage",
    "Membership",
    "MspRole",
    "OnboardingStep",
    "PlanTier",
    "ServicePlan",
    "Severity",
    "StaffAssignment",
    "Tenant",
    "TenantRole",
    "TenantStatus",
    "TokenScope",
    "User",
    "validate_timezone",
]
