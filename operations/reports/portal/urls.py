"""Portal pages for reports, under ``/portal/<slug>/reports/``."""

from django.urls import path

from operations.reports.portal import views

app_name = "portal_reports"

urlpatterns = [
    # Tenant pages: every view below is wrapped in portal_tenant_view.
    path("<slug:slug>/reports/", views.report_list_page, name="list"),
    path("<slug:slug>/reports/<int:pk>/download.<str:fmt>", views.report_download, name="download"),
    path(
        "<slug:slug>/reports/evidence-pack/",
        views.evidence_pack_request_page,
        name="evidence-pack-request",
    ),
]
