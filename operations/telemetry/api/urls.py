from django.urls import re_path

from operations.telemetry.api import views

# A trailing slash is optional, as on the other tenant routes.
_TELEMETRY = r"^tenants/(?P<tenant_slug>[-a-zA-Z0-9_]+)/telemetry"

urlpatterns = [
    re_path(
        rf"{_TELEMETRY}/samples/?$", views.SampleIngestView.as_view(), name="telemetry-samples"
    ),
    re_path(
        rf"{_TELEMETRY}/prometheus/?$",
        views.PrometheusIngestView.as_view(),
        name="telemetry-prometheus",
    ),
    re_path(
        rf"{_TELEMETRY}/remote-write/?$",
        views.RemoteWriteView.as_view(),
        name="telemetry-remote-write",
    ),
    re_path(rf"{_TELEMETRY}/series/?$", views.SeriesView.as_view(), name="telemetry-series"),
    re_path(rf"{_TELEMETRY}/metrics/?$", views.MetricsView.as_view(), name="telemetry-metrics"),
    re_path(rf"{_TELEMETRY}/policy/?$", views.PolicyView.as_view(), name="telemetry-policy"),
]
