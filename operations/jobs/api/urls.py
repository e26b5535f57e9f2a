from operations.jobs.api.views import JobRunViewSet
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(f"{TENANT}/jobs", JobRunViewSet, basename="tenant-job")

urlpatterns = router.urls
