"""The incident list as CSV (``…/incidents/?format=csv``, ``Accept: text/csv`` and the older
``…/incidents/export/``): the list's filters, search and ordering, every page, streamed in a
constant number of queries."""

from __future__ import annotations

import csv
import io

import pytest

from msp.api import csv_download
from tests.incidents.factories import make_incident

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenants/acme/incidents/export/"
LIST = "/api/v1/tenants/acme/incidents/"


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.getvalue().decode())))


def test_the_export_is_the_filtered_searched_and_ordered_list(admin_a, tenant_a):
    make_incident(tenant_a, title="GPU node down", severity="SEV1")
    make_incident(tenant_a, title="Latency above target", severity="SEV3")
    make_incident(tenant_a, title="GPU memory errors", severity="SEV2")

    response = admin_a.client.get(URL, {"search": "GPU", "ordering": "number"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
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
    assert "'=HYPERLINK" in admin_a.client.get(URL).getvalue().decode()


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


def test_the_list_answers_csv_of_every_page_with_its_filters(admin_a, tenant_a, monkeypatch):
    # Chunks of two rows: the stream crosses chunk boundaries on five incidents.
    monkeypatch.setattr(csv_download, "CSV_CHUNK_ROWS", 2)
    for n in range(5):
        make_incident(tenant_a, title=f"GPU fault {n}", severity="SEV2")
    make_incident(tenant_a, title="Latency", severity="SEV4")

    response = admin_a.client.get(
        LIST, {"format": "csv", "severity": "SEV2", "ordering": "number", "page_size": 2}
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="acme-incidents.csv"' in response["Content-Disposition"]
    body = response.getvalue()
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert [row[1] for row in rows[1:]] == [f"GPU fault {n}" for n in range(5)]
    assert {row[2] for row in rows[1:]} == {"SEV2"}

    by_header = admin_a.client.get(LIST, {"search": "Latency"}, HTTP_ACCEPT="text/csv")
    assert [row[1] for row in rows_of(by_header)[1:]] == ["Latency"]
    # The same filters through the older route give the same bytes.
    same = admin_a.client.get(URL, {"severity": "SEV2", "ordering": "number"})
    assert same.getvalue() == body


def test_a_bad_filter_on_a_csv_list_is_the_json_400(admin_a):
    response = admin_a.client.get(LIST, {"format": "csv", "severity": "SEV9"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert list(response.json()["error"]["fields"]) == ["severity"]


def test_json_stays_the_default_and_detail_answers_no_csv(admin_a, tenant_a):
    incident = make_incident(tenant_a)
    assert admin_a.client.get(LIST).json()["count"] == 1
    detail = admin_a.client.get(f"{LIST}{incident.pk}/", {"format": "csv"})
    assert detail.status_code == 404
    assert detail.json()["error"]["code"] == "not_found"


@pytest.mark.django_db(transaction=True)
def test_the_stream_reads_in_the_tenant_scope_after_the_view_has_returned(
    admin_a, tenant_a, tenant_b, monkeypatch
):
    """With real commits, as in production: the body is read after the request's scope, and
    on PostgreSQL its transaction and row-level security setting, have closed; the stream opens
    the scope again (without it, PostgreSQL's row-level security shows no rows at all)."""
    monkeypatch.setattr(csv_download, "CSV_CHUNK_ROWS", 2)
    own = [make_incident(tenant_a, title=f"Own {n}") for n in range(5)]
    make_incident(tenant_b, title="Foreign")
    response = admin_a.client.get(LIST, {"format": "csv", "ordering": "number"})
    assert response.status_code == 200
    rows = rows_of(response)
    assert [row[0] for row in rows[1:]] == [incident.reference for incident in own]
