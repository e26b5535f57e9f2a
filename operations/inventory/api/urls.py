from django.urls import re_path

from operations.inventory.api import views
from tenants.api.urls import TENANT, tenant_router

router = tenant_router()
router.register(f"{TENANT}/sites", views.SiteViewSet, basename="inventory-site")
router.register(f"{TENANT}/compute", views.ComputeViewSet, basename="inventory-compute")
router.register(f"{TENANT}/gpus", views.GpuDeviceViewSet, basename="inventory-gpu")
router.register(
    f"{TENANT}/cloud-accounts", views.CloudAccountViewSet, basename="inventory-cloud-account"
)
router.register(f"{TENANT}/links", views.LinkViewSet, basename="inventory-link")
router.register(f"{TENANT}/ai-systems", views.AISystemViewSet, basename="inventory-ai-system")
router.register(
    f"{TENANT}/ai-system-datasets",
    views.AISystemDatasetViewSet,
    basename="inventory-ai-system-dataset",
)
router.register(f"{TENANT}/deployments", views.DeploymentViewSet, basename="inventory-deployment")
router.register(f"{TENANT}/datasets", views.DatasetViewSet, basename="inventory-dataset")

urlpatterns = [
    re_path(
        rf"^{TENANT}/inventory/import/?$",
        views.InventoryImportView.as_view(),
        name="inventory-import",
    ),
    re_path(
        rf"^{TENANT}/inventory/export/?$",
        views.InventoryExportView.as_view(),
        name="inventory-export",
    ),
    *router.urls,
]
