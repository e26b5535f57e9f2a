"""Portal pages for recommendations, under ``/portal/<slug>/recommendations/``.

Included beside the portal's own URLs, in the project's urls:
``path("portal/", include("operations.optimisation.portal.urls"))``.
"""

from django.urls import path

from operations.optimisation.portal import views

app_name = "portal_recommendations"

urlpatterns = [
    # Tenant pages: every view below is wrapped in portal_tenant_view.
    path("<slug:slug>/recommendations/", views.recommendation_list, name="list"),
    path("<slug:slug>/recommendations.csv", views.recommendation_list_csv, name="list-csv"),
    path("<slug:slug>/recommendations/<int:pk>/", views.recommendation_detail, name="detail"),
    path(
        "<slug:slug>/recommendations/<int:pk>/<str:action>/",
        views.recommendation_act,
        name="act",
    ),
]
