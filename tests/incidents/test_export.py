"""``GET …/incidents/export/``: the incident list as CSV, with the list's filters, search and
ordering, in a constant number of queries and within a clear limit."""

from __future__ import annotations

import csv
import io

import pytest

from operations.incidents.api import views
from tests.incidents.factories import make_incident

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants/acme/incidents/export/"


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_export_is_the_filtered_searched_and_ordered_list(admin_a, tenant_a):
    make_incident(tenant_a, title="GPU node down", severity="SEV1")
    make_incident(tenant_a, title="Latency above target", severity="SEV3")
    make_incident(tenant_a, title="GPU memory errors", severity="SEV2")

    response = admin_a.client.get(URL, {"search": "GPU", "ordering": "number"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv"
    assert 'filename="acme-incidents.csv"' in response["Content-Disposition"]
    rows = rows_of(response)
    assert rows[0][:4] == ["incident", "title", "severity", "status"]
    assert [row[1] for row in rows[1:]] == ["GPU node down", "GPU memory errors"]

    listed = admin_a.client.get(
        "/api/v1/tenants/acme/incidents/", {"severity": ["SEV1", "SEV2"], "ordering": "-number"}
    ).json()["results"]
    exported = rows_of(
        admin_a.client.get(URL, {"severity": ["SEV1", "SEV2"], "ordering": "-number"})
    )
    assert [row[0] for row in exported[1:]] == [row["reference"] for row in listed]


def test_a_bad_filter_is_the_same_400_as_on_the_list(admin_a):
    response = admin_a.client.get(URL, {"severity": "SEV9"})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["severity"]


def test_the_export_defuses_spreadsheet_formulas(admin_a, tenant_a):
    make_incident(tenant_a, title='=HYPERLINK("evil")')
    assert "'=HYPERLINK" in admin_a.client.get(URL).content.decode()


def test_the_query_count_does_not_grow_with_the_rows(
    admin_a, tenant_a, engineer_a, django_assert_max_num_queries
):
    make_incident(tenant_a)
    with django_assert_max_num_queries(50) as few:
        assert admin_a.client.get(URL).status_code == 200
    for _ in range(8):
        make_incident(tenant_a)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = admin_a.client.get(URL)
    assert len(rows_of(response)) == 1 + 9


def test_past_the_limit_the_caller_is_asked_to_narrow_the_filters(admin_a, tenant_a, monkeypatch):
    monkeypatch.setattr(views, "INCIDENT_EXPORT_LIMIT", 2)
    for _ in range(3):
        make_incident(tenant_a)
    response = admin_a.client.get(URL)
    assert response.status_code == 400
    assert "narrow the filters" in response.json()["error"]["message"]
    assert admin_a.client.get(URL, {"ordering": "number", "search": "ACME-1"}).status_code == 200
