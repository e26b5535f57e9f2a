"""The audit log as CSV, for MSP staff only: ``/api/v1/audit/?format=csv`` (the tenants the
staff member reaches, a bound token's tenant only) and ``…/tenants/{slug}/audit/?format=csv``."""

from __future__ import annotations

import csv
import io

import pytest

from tenants.audit import audit_record
from tenants.models import AuditAction
from tests.conftest import Actor
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def rows_of(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.getvalue().decode())))


@pytest.fixture
def events(tenant_a, tenant_b):
    return {
        "a_update": audit_record(tenant=tenant_a, action=AuditAction.UPDATE, instance=tenant_a),
        "a_create": audit_record(tenant=tenant_a, action=AuditAction.CREATE, instance=tenant_a),
        "b_update": audit_record(tenant=tenant_b, action=AuditAction.UPDATE, instance=tenant_b),
    }


def test_staff_download_the_audit_log_they_reach_with_its_filters(msp_admin, engineer_a, events):
    everything = msp_admin.client.get("/api/v1/audit/", {"format": "csv", "page_size": 1})
    assert everything.status_code == 200
    assert 'filename="audit.csv"' in everything["Content-Disposition"]
    ids = {row["id"] for row in rows_of(everything)}
    assert {str(event.pk) for event in events.values()} <= ids

    updates = rows_of(
        engineer_a.client.get("/api/v1/audit/", {"format": "csv", "action": "update"})
    )
    assert [row["id"] for row in updates] == [str(events["a_update"].pk)]
    assert updates[0]["tenant"] == "acme"
    assert updates[0]["action"] == "update"

    one_tenant = rows_of(engineer_a.client.get("/api/v1/tenants/acme/audit/?format=csv"))
    assert {str(events["a_update"].pk), str(events["a_create"].pk)} <= {
        row["id"] for row in one_tenant
    }
    assert {row["tenant"] for row in one_tenant} == {"acme"}


def test_a_bound_token_downloads_its_tenant_only(msp_admin, tenant_a, events):
    bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_a))
    rows = rows_of(bound.client.get("/api/v1/audit/", {"format": "csv"}))
    assert {row["tenant"] for row in rows} == {"acme"}
    assert str(events["b_update"].pk) not in {row["id"] for row in rows}


def test_a_token_without_the_read_scope_is_refused(msp_admin, events):
    writer = Actor(msp_admin.user, make_token(msp_admin.user, scopes=("write",)))
    response = writer.client.get("/api/v1/audit/", {"format": "csv"})
    assert response.status_code == 403
    assert "'read' scope" in response.json()["error"]["message"]


def test_clients_are_refused_the_csv_in_the_one_error_format(admin_a, events):
    for url in ("/api/v1/audit/", "/api/v1/tenants/acme/audit/"):
        response = admin_a.client.get(url, {"format": "csv"})
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"]["message"] == (
            "Only MSP staff can download the audit log as CSV."
        )
    # Their tenant's log in JSON stays theirs to read.
    assert admin_a.client.get("/api/v1/tenants/acme/audit/").status_code == 200
