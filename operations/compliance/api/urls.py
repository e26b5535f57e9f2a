from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from operations.compliance.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(
    f"{TENANT}/compliance/findings", views.FindingViewSet, basename="compliance-finding"
)
router.register(f"{TENANT}/compliance/waivers", views.WaiverViewSet, basename="compliance-waiver")
router.register(f"{TENANT}/compliance/scores", views.ScoreViewSet, basename="compliance-score")

catalogue = SimpleRouter()
catalogue.register("compliance/frameworks", views.FrameworkViewSet, basename="compliance-framework")

urlpatterns = [
    path(
        "compliance/checks/", views.CheckCatalogueView.as_view(), name="compliance-check-catalogue"
    ),
    re_path(
        rf"^{TENANT}/compliance/evidence-pack/?$",
        views.EvidencePackView.as_view(),
        name="compliance-evidence-pack",
    ),
    *catalogue.urls,
    *router.urls,
]
