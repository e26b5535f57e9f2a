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


def test_the_backend_skips_only_a_filterset_the_query_does_not_name():
    from msp.api.filters import _names_a_filter

    class Ranged(FilterSet):
        created = django_filters.DateTimeFromToRangeFilter()
        name = django_filters.CharFilter()

        class Meta:
            model = Site
            fields = []

    assert not _names_a_filter(Ranged, {"page_size": "100", "ordering": "name", "search": "x"})
    # A range filter is named by its suffixed parameters, not its own name.
    assert _names_a_filter(Ranged, {"created_after": "2026-01-01T00:00:00Z"})
    assert _names_a_filter(Ranged, {"name": "Leeds"})


def test_an_unnamed_filterset_still_leaves_search_and_ordering_working(admin_a, tenant_a):
    for code in ("b-site", "a-site"):
        estate.make_site(tenant_a, code=code)
    rows = admin_a.client.get(f"{API}/sites/", {"ordering": "-code", "search": "site"}).json()
    assert [row["code"] for row in rows["results"]] == ["b-site", "a-site"]
