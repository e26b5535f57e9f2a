from django.urls import re_path
from rest_framework.routers import SimpleRouter

from operations.readiness.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(
    f"{TENANT}/readiness/assessments", views.AssessmentViewSet, basename="readiness-assessment"
)
router.register(f"{TENANT}/readiness/scores", views.ScoreViewSet, basename="readiness-score")

catalogue = SimpleRouter()
catalogue.register("readiness/frameworks", views.FrameworkViewSet, basename="readiness-framework")

urlpatterns = [
    re_path(
        rf"^{TENANT}/readiness/benchmark/?$",
        views.BenchmarkView.as_view(),
        name="readiness-benchmark",
    ),
    *catalogue.urls,
    *router.urls,
]
