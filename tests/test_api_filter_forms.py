"""API filtersets build their form class once per class (msp/api/filters.py): a reused class
must still check every request's values, and a filter whose choices come from the request
must still see each request's own choices."""

from __future__ import annotations

import django_filters
from django.test import RequestFactory

from msp.api.filters import FilterSet
from operations.inventory.models import Site
from tenants.scoping import tenant_scope
from tests.inventory import estate

API = "/api/v1/tenants/acme"


def test_a_reused_form_class_still_checks_and_applies_each_requests_values(admin_a, tenant_a):
    near, far = estate.make_site(tenant_a), estate.make_site(tenant_a)
    estate.make_compute(tenant_a, site=near)
    estate.make_compute(tenant_a, site=far)
    for _ in range(2):
        response = admin_a.client.get(f"{API}/compute/", {"site": "1e30"})
        assert response.status_code == 400, response.content
        assert list(response.json()["error"]["fields"]) == ["site"]
    for site in (near, far):
        rows = admin_a.client.get(f"{API}/compute/", {"site": site.pk}).json()["results"]
        assert [row["site"] for row in rows] == [site.pk]


def _sites_named_by_the_request(request):
    return Site.objects.filter(code=request.allowed_code)


class SiteByRequestFilter(FilterSet):
    site = django_filters.ModelChoiceFilter(field_name="site", queryset=_sites_named_by_the_request)


def test_a_filter_with_choices_from_the_request_builds_its_form_per_request(tenant_a):
    first, second = estate.make_site(tenant_a), estate.make_site(tenant_a)
    with tenant_scope(tenant_a.id):
        for site in (first, second):
            request = RequestFactory().get("/", {"site": site.pk})
            request.allowed_code = site.code
            filterset = SiteByRequestFilter(
                request.GET, queryset=Site.objects.all(), request=request
            )
            assert filterset.is_valid(), filterset.errors
