"""Filter values the database cannot hold are a 400 naming the parameter, never a 500."""

from __future__ import annotations

import pytest

from tests.incidents.factories import make_incident


@pytest.mark.parametrize(
    ("route", "query", "parameter"),
    [
        ("links", "site=-2.0412650391406978e%2B138", "site"),
        ("links", "site_a=1e30", "site_a"),
        ("incidents", "assignee=1e30", "assignee"),
        ("links", "min_bandwidth_mbps=1e30", "min_bandwidth_mbps"),
        # UTC carries this into year 10000.
        ("incidents", "created_before=9999-12-31T23:00:00-05:00", "created_before"),
        ("audit", "since=9999-12-31T23:00:00-05:00", "since"),
    ],
)
def test_a_value_out_of_the_databases_range_is_a_400(admin_a, route, query, parameter):
    prefix = "/api/v1" if route == "audit" else "/api/v1/tenants/acme"
    response = admin_a.client.get(f"{prefix}/{route}/?{query}")
    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == [parameter]


def test_an_offset_postgresql_refuses_is_read_in_utc(admin_a, tenant_a):
    """Python accepts UTC−16:32; PostgreSQL refuses offsets past ±15:59 (a DataError, 500)."""
    make_incident(tenant_a)
    response = admin_a.client.get(
        "/api/v1/tenants/acme/incidents/",
        {"created_after": "1288-08-30T00:54:48.046-16:32", "breaching_within": "1.9e-213"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0
    response = admin_a.client.get(
        "/api/v1/tenants/acme/incidents/", {"created_after": "1288-08-30T00:54:48.046-16:32"}
    )
    assert response.json()["count"] == 1
