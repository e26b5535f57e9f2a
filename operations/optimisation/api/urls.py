from operations.optimisation.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(
    f"{TENANT}/recommendations", views.RecommendationViewSet, basename="tenant-recommendation"
)

urlpatterns = [*router.urls]
