"""The project's URLs plus the recommendations portal page, as the project will include them."""

from django.urls import include, path

from msp.urls import handler400, handler403, handler404, handler500  # noqa: F401
from msp.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    *project_urlpatterns,
    path("portal/", include("operations.optimisation.portal.urls")),
]
