from django.urls import path

from operations.events.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(f"{TENANT}/webhooks", views.WebhookEndpointViewSet, basename="tenant-webhook")
router.register(
    f"{TENANT}/webhook-deliveries", views.DeliveryViewSet, basename="tenant-webhook-delivery"
)
router.register(
    f"{TENANT}/notification-preferences",
    views.NotificationPreferenceViewSet,
    basename="tenant-notification-preference",
)
router.register(
    f"{TENANT}/notifications", views.NotificationViewSet, basename="tenant-notification"
)
router.register("webhooks", views.MspWebhookEndpointViewSet, basename="msp-webhook")
router.register("webhook-deliveries", views.MspDeliveryViewSet, basename="msp-webhook-delivery")

urlpatterns = [
    path("events/catalogue/", views.EventCatalogueView.as_view(), name="event-catalogue"),
    path("oncall/", views.OnCallView.as_view(), name="oncall"),
    *router.urls,
]
