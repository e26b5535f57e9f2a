"""``…/recommendations/?format=csv``: every recommendation the filters select, with its saving."""

from __future__ import annotations

import csv
import io

import pytest

from tests.optimisation import test_api as recommendations

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants/acme/recommendations/"


def test_recommendations_csv_has_the_filters_and_the_savings(admin_a, tenant_a, tenant_b):
    big = recommendations.make_recommendation(tenant_a, n=3)
    small = recommendations.make_recommendation(tenant_a, n=1, title="-1+1 idle")
    recommendations.make_recommendation(tenant_a, n=2, status="dismissed")
    recommendations.make_recommendation(tenant_b, n=9)

    response = admin_a.client.get(URL, {"format": "csv", "status": "open", "page_size": 1})
    assert response.status_code == 200
    assert 'filename="acme-recommendations.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    # Ordered by saving, the list's default; both pages; the dismissed one filtered out.
    assert [row["id"] for row in rows] == [str(big.pk), str(small.pk)]
    assert [row["estimated monthly saving"] for row in rows] == ["300.00", "100.00"]
    assert rows[1]["title"] == "'-1+1 idle"
    assert {row["status"] for row in rows} == {"open"}


def test_the_portal_list_downloads_as_csv_with_its_state(client, admin_a, tenant_a, tenant_b):
    client.force_login(admin_a.user)
    kept = recommendations.make_recommendation(tenant_a, n=2)
    recommendations.make_recommendation(tenant_a, n=1, status="dismissed")
    recommendations.make_recommendation(tenant_b, n=9)
    listing = client.get("/portal/acme/recommendations/").content.decode()
    assert 'href="/portal/acme/recommendations.csv?state=open"' in listing

    response = client.get("/portal/acme/recommendations.csv", {"state": "open"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert [row["id"] for row in rows] == [str(kept.pk)]
    assert client.get("/portal/borealis/recommendations.csv").status_code == 404
