"""Portal pages for incidents, under ``/portal/<slug>/incidents/``.

Included beside the portal's own URLs, in the project's urls:
``path("portal/", include("operations.incidents.portal.urls"))``.
"""

from django.urls import path

from operations.incidents.portal import views

app_name = "portal_incidents"

urlpatterns = [
    # Tenant pages: every view below is wrapped in portal_tenant_view.
    path("<slug:slug>/incidents/", views.incident_list, name="list"),
    path("<slug:slug>/incidents.csv", views.incident_list_csv, name="list-csv"),
    path("<slug:slug>/incidents/new/", views.incident_raise, name="raise"),
    path("<slug:slug>/incidents/alert-rules/", views.alert_rule_list, name="alert-rules"),
    path("<slug:slug>/incidents/<int:number>/", views.incident_detail, name="detail"),
    path(
        "<slug:slug>/incidents/<int:number>/timeline.csv",
        views.incident_timeline_csv,
        name="timeline-csv",
    ),
    path(
        "<slug:slug>/incidents/<int:number>/close/",
        views.incident_confirm,
        {"action": "close"},
        name="close",
    ),
    path(
        "<slug:slug>/incidents/<int:number>/reopen/",
        views.incident_confirm,
        {"action": "reopen"},
        name="reopen",
    ),
    # The engineer's workflow (MSP staff who write).
    path(
        "<slug:slug>/incidents/<int:number>/act/<slug:action>/",
        views.incident_staff_act,
        name="staff-act",
    ),
    path("<slug:slug>/incidents/<int:number>/note/", views.incident_staff_note, name="staff-note"),
    path(
        "<slug:slug>/incidents/<int:number>/assign/",
        views.incident_staff_assign,
        name="staff-assign",
    ),
    path(
        "<slug:slug>/incidents/<int:number>/severity/",
        views.incident_staff_severity,
        name="staff-severity",
    ),
]
