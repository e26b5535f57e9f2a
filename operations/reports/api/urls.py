from operations.reports.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(f"{TENANT}/reports", views.ReportViewSet, basename="report")

urlpatterns = router.urls
