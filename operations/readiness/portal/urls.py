"""Portal pages for readiness, under ``/portal/<slug>/readiness/``.

Included beside the portal's own URLs in the project's urls:
``path("portal/", include("operations.readiness.portal.urls"))``.
"""

from django.urls import path

from operations.readiness.portal import views

app_name = "portal_readiness"

urlpatterns = [
    # Tenant pages: every view below is wrapped in portal_tenant_view.
    path("<slug:slug>/readiness/", views.readiness_overview, name="overview"),
    path("<slug:slug>/readiness/rescore/", views.rescore_now, name="rescore"),
    path("<slug:slug>/readiness/assessment/", views.assessment, name="assessment"),
    path("<slug:slug>/readiness/assessment/start/", views.assessment_start, name="start"),
    path("<slug:slug>/readiness/assessment/submit/", views.assessment_submit, name="submit"),
    path(
        "<slug:slug>/readiness/assessment/pillars/<slug:pillar>/",
        views.assessment_pillar_save,
        name="pillar-save",
    ),
]
