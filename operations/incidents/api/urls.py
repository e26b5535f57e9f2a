from django.urls import path

from operations.incidents.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(f"{TENANT}/incidents", views.IncidentViewSet, basename="tenant-incident")
router.register(f"{TENANT}/alert-rules", views.AlertRuleViewSet, basename="tenant-alert-rule")

urlpatterns = [
    path(
        "incidents/metrics",
        views.FleetIncidentMetricsView.as_view(),
        name="incident-fleet-metrics",
    ),
    path(
        "alert-rules/defaults",
        views.AlertRuleDefaultListView.as_view(),
        name="alert-rule-defaults",
    ),
    *router.urls,
]
