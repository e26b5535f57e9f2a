from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from msp import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:home", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    # The admin's sign-in page links here ("Forgotten your login credentials?").
    path(
        "admin/password_reset/",
        RedirectView.as_view(pattern_name="portal:password-reset", permanent=False),
        name="admin_password_reset",
    ),
    path("admin/", admin.site.urls),
    path("portal/", include("tenants.portal.urls")),
    path("portal/", include("operations.incidents.portal.urls")),
    path("portal/", include("operations.inventory.portal.urls")),
    path("portal/", include("operations.optimisation.portal.urls")),
    path("portal/", include("operations.compliance.portal.urls")),
    path("portal/", include("operations.readiness.portal.urls")),
    path("portal/", include("operations.events.portal.urls")),
    path("portal/", include("operations.reports.portal.urls")),
    path("portal/", include("msp.console.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Telemetry first: agents post every few seconds, and each include tried before costs a
    # request a pass over its patterns (≈ 0.2 ms of CPU). No route of the others overlaps.
    path("api/v1/", include("operations.telemetry.api.urls")),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("operations.inventory.api.urls")),
    path("api/v1/", include("operations.incidents.api.urls")),
    path("api/v1/", include("operations.jobs.api.urls")),
    path("api/v1/", include("operations.compliance.api.urls")),
    path("api/v1/", include("operations.optimisation.api.urls")),
    path("api/v1/", include("operations.readiness.api.urls")),
    path("api/v1/", include("operations.readiness.api.gate_urls")),
    path("api/v1/", include("operations.events.api.urls")),
    path("api/v1/", include("operations.reports.api.urls")),
]

handler400 = "msp.views.handler400"
handler403 = "msp.views.handler403"
handler404 = "msp.views.handler404"
handler500 = "msp.views.handler500"
