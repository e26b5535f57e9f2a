from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import views

TENANT = r"tenants/(?P<tenant_slug>[-a-zA-Z0-9_]+)"


def tenant_router() -> SimpleRouter:
    """A router whose routes accept a trailing slash or none (``…/{id}/revoke``)."""
    router = SimpleRouter()
    router.trailing_slash = "/?"
    return router


router = tenant_router()
router.register("tenants", views.TenantViewSet, basename="tenant")
router.register(f"{TENANT}/members", views.MembershipViewSet, basename="tenant-member")
router.register(f"{TENANT}/staff", views.StaffAssignmentViewSet, basename="tenant-staff")
router.register(f"{TENANT}/onboarding", views.OnboardingStepViewSet, basename="tenant-onboarding")
router.register(f"{TENANT}/tokens", views.ApiTokenViewSet, basename="tenant-token")
router.register(f"{TENANT}/audit", views.TenantAuditEventViewSet, basename="tenant-audit")
router.register("audit", views.AuditEventViewSet, basename="audit")

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("tenants/<slug:tenant_slug>/plan/", views.ServicePlanView.as_view(), name="tenant-plan"),
    *router.urls,
]
