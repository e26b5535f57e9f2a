"""Portal pages for the AI estate, under ``/portal/<slug>/estate/``.

Included beside the portal's own URLs in the project's urls:
``path("portal/", include("operations.inventory.portal.urls"))``.
"""

from django.urls import path

from operations.inventory.portal import resource, views

app_name = "portal_estate"

urlpatterns = [
    # Tenant pages: every view below is wrapped in portal_tenant_view.
    path("<slug:slug>/estate/", views.estate_overview, name="overview"),
    path("<slug:slug>/estate/compute/<int:pk>/", resource.compute_detail, name="compute"),
    path("<slug:slug>/estate/deployments/<int:pk>/", resource.deployment_detail, name="deployment"),
]
