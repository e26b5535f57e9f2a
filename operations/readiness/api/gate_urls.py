from django.urls import path

from operations.readiness.api import gate_views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(
    f"{TENANT}/ai-systems", gate_views.AISystemGatesViewSet, basename="readiness-ai-system"
)

urlpatterns = [
    path(
        "readiness/pipeline",
        gate_views.ReadinessPipelineView.as_view(),
        name="readiness-pipeline",
    ),
    *router.urls,
]
