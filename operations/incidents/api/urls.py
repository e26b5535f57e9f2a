from django.urls import path

from operations.incidents.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(f"{TENANT}/incidents", views.IncidentViewSet, basename="tenant-incident")

urlpatterns = [
    path(
        "incidents/metrics",
        views.FleetIncidentMetricsView.as_view(),
        name="incident-fleet-metrics",
    ),
    *router.urls,
]
