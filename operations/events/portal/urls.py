"""Portal pages for webhooks, under ``/portal/<slug>/webhooks/``."""

from django.urls import path

from operations.events.portal import views

app_name = "portal_events"

urlpatterns = [
    path("<slug:slug>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "<slug:slug>/webhooks/<int:endpoint_id>/<slug:action>/",
        views.webhook_action,
        name="webhook-action",
    ),
]
