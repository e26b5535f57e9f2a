"""Portal pages of the delivery context: webhooks (``/portal/<slug>/webhooks/``) and one's own
email notifications (``/portal/<slug>/notifications/``)."""

from django.urls import path

from operations.events.portal import views

app_name = "portal_events"

urlpatterns = [
    path("<slug:slug>/notifications/", views.email_settings, name="notifications"),
    path("<slug:slug>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "<slug:slug>/webhooks/<int:endpoint_id>/<slug:action>/",
        views.webhook_action,
        name="webhook-action",
    ),
]
