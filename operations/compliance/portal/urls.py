"""Portal pages for compliance, under ``/portal/<slug>/compliance/``.

Included beside the portal's own URLs in the project's urls:
``path("portal/", include("operations.compliance.portal.urls"))``.
"""

from django.urls import path

from operations.compliance.portal import views

app_name = "portal_compliance"

urlpatterns = [
    # Tenant pages: every view below is wrapped in portal_tenant_view.
    path("<slug:slug>/compliance/", views.compliance_overview, name="overview"),
    path("<slug:slug>/compliance/findings.csv", views.compliance_findings_csv, name="findings-csv"),
    path(
        "<slug:slug>/compliance/evidence-pack.zip",
        views.compliance_evidence_pack,
        name="evidence-pack",
    ),
]
