"""The API kernel's input rules (issue 9, items 5, 6 and 8), one defect at a time.

``tests/test_hostile_input.py`` walks every route with the same hostile bodies; these tests
pin each rule down on one route, with the message a client sees.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from msp.api.errors import api_exception_handler
from operations.incidents.models import Incident
from operations.inventory.api.serializers import LinkSerializer
from operations.inventory.models import AISystem, ComputeResource, Site
from tenants.models import AuditEvent, Membership, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.inventory import estate

pytestmark = pytest.mark.django_db

API = "/api/v1/tenants/acme"


def error_of(response) -> dict:
    body = json.loads(response.content.decode("utf-8"))
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return body["error"]


def post_text(actor, path: str, text, content_type="application/json"):
    actor.client.raise_request_exception = False  # an unhandled error shows as its 500
    return actor.client.post(f"{API}/{path}", data=text, content_type=content_type)


def count(model, tenant) -> int:
    with tenant_scope(tenant.id):
        return model.objects.count()


# --- 5. Malformed input is a 400 --------------------------------------------------------------


class TestMalformedJSON:
    def test_deep_nesting_is_a_400(self, admin_a, tenant_a):
        response = post_text(admin_a, "sites/", "[" * 5000 + "]" * 5000)
        assert response.status_code == 400
        assert "nested deeper" in error_of(response)["message"]

    def test_nesting_that_python_could_parse_is_still_refused(self, admin_a, tenant_a):
        deep = '{"kind": "noop", "parameters": {"a": ' + "[" * 200 + "]" * 200 + "}}"
        response = post_text(admin_a, "jobs/", deep)
        assert response.status_code == 400
        assert "nested deeper" in error_of(response)["message"]

    def test_a_lone_surrogate_in_a_choice_field_is_a_400(self, admin_a, tenant_a):
        body = '{"code": "s1", "name": "Site", "kind": "\\ud800", "country": "DE"}'
        response = post_text(admin_a, "sites/", body)
        assert response.status_code == 400
        assert "surrogate" in error_of(response)["message"]
        assert count(Site, tenant_a) == 0

    def test_surrogate_pairs_are_ordinary_text(self, admin_a, tenant_a):
        body = '{"code": "s1", "name": "Site \\ud83d\\ude80", "kind": "edge", "country": "DE"}'
        response = post_text(admin_a, "sites/", body)
        assert response.status_code == 201, response.content
        assert response.json()["name"] == "Site \N{ROCKET}"

    def test_an_error_message_that_echoes_unencodable_text_still_renders(self):
        # Whatever reaches the handler (a parser that lets a surrogate through, a service
        # quoting input), the one error body renders as UTF-8.
        exc = exceptions.ValidationError({"kind": ['"\ud800" is not a valid choice.']})
        response = api_exception_handler(exc, {})
        rendered = JSONRenderer().render(response.data).decode("utf-8")
        assert json.loads(rendered)["error"]["fields"]["kind"] == [
            '"\\ud800" is not a valid choice.'
        ]

    @pytest.mark.parametrize("number", ["1e400", "-1e400", "100000000000000000000000000000"])
    def test_an_overflowing_number_as_a_foreign_key_is_a_400(self, admin_a, tenant_a, number):
        site = estate.make_site(tenant_a)
        body = f'{{"site_a": {number}, "site_b": {site.pk}, "bandwidth_mbps": 10}}'
        response = post_text(admin_a, "links/", body)
        assert response.status_code == 400
        assert "out of range" in error_of(response)["message"]

    @pytest.mark.parametrize(
        "value", [float("inf"), float("nan"), 10**30, -1, True, "1e400", "x", 1.5]
    )
    def test_a_foreign_key_refuses_an_insane_id_before_querying(self, tenant_a, value):
        # Behind the parser: Python values that no JSON body carries any more still get a 400.
        site = estate.make_site(tenant_a)
        data = {"site_a": value, "site_b": site.pk, "bandwidth_mbps": 10, "latency_ms": 1}
        with tenant_scope(tenant_a.id):
            serializer = LinkSerializer(data=data, context={"tenant": tenant_a})
            assert not serializer.is_valid()
        assert list(serializer.errors) == ["site_a"]


class TestCSV:
    def test_a_field_over_the_csv_limit_is_a_400_naming_the_row(self, admin_a, tenant_a):
        text = "hostname,kind\nok-1,cpu_node\n" + "x" * 131_073 + ",cpu_node\n"
        response = post_text(admin_a, "inventory/import/", text, "text/csv")
        assert response.status_code == 400
        message = error_of(response)["message"]
        assert "row 1" in message
        assert "field larger than field limit" in message
        assert count(ComputeResource, tenant_a) == 0

    @pytest.mark.parametrize(
        "body",
        [
            b'hostname,kind\n"unclosed,cpu_node\n',
            b"hostname,kind\nh\x00,cpu_node\n",
            b"hostname,kind,gpu_count,site\nh,cpu_node,1e400,1e400\n",
            b"hostname,kind\nh,\xed\xa0\x80\n",  # a UTF-8-encoded surrogate
            "x" * 140_000,
        ],
        ids=["unclosed-quote", "nul", "overflowing-numbers", "encoded-surrogate", "huge-header"],
    )
    def test_hostile_csv_is_a_clean_400(self, admin_a, tenant_a, body):
        response = post_text(admin_a, "inventory/import/", body, "text/csv")
        assert response.status_code == 400, response.content
        error_of(response)
        assert count(ComputeResource, tenant_a) == 0


def test_patching_a_member_with_no_fields_changes_nothing(admin_a, tenant_a):
    member = make_member(tenant_a, TenantRole.VIEWER)
    before = AuditEvent.objects.count()
    admin_a.client.raise_request_exception = False
    response = admin_a.client.patch(f"{API}/members/{member.membership.pk}/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["role"] == TenantRole.VIEWER
    assert Membership.objects.get(pk=member.membership.pk).role == TenantRole.VIEWER
    assert AuditEvent.objects.count() == before


# --- 6. One request cannot hold a worker ---------------------------------------------------------


def _systems(tenant, number: int) -> list[int]:
    with tenant_scope(tenant.id):
        AISystem.objects.bulk_create(
            AISystem(tenant=tenant, name=f"system {index}") for index in range(number)
        )
        return list(AISystem.objects.values_list("pk", flat=True))


class TestRelatedIdLists:
    def raise_incident(self, actor, ids):
        payload = {"title": "Down", "category": "outage", "ai_systems": ids}
        return actor.client.post(f"{API}/incidents/", payload, format="json")

    def test_ids_are_resolved_in_one_query_whatever_their_number(self, admin_a, tenant_a):
        ids = _systems(tenant_a, 60)
        # The first incident of a tenant creates its counter: measure from the second on.
        assert self.raise_incident(admin_a, ids[:1]).status_code == 201
        with CaptureQueriesContext(connection) as few:
            assert self.raise_incident(admin_a, ids[:2]).status_code == 201
        with CaptureQueriesContext(connection) as many:
            assert self.raise_incident(admin_a, ids).status_code == 201
        assert len(many) == len(few)
        with tenant_scope(tenant_a.id):
            assert Incident.objects.order_by("-pk").first().ai_systems.count() == 60

    def test_a_list_past_the_limit_is_refused_before_any_lookup(
        self, admin_a, tenant_a, settings, django_assert_max_num_queries
    ):
        settings.API_MAX_LIST_LENGTH = 1000
        with django_assert_max_num_queries(12):
            response = self.raise_incident(admin_a, list(range(1, 20_002)))
        assert response.status_code == 400
        assert error_of(response)["fields"] == {
            "ai_systems": ["Ensure this field has no more than 1000 elements."]
        }
        assert count(Incident, tenant_a) == 0

    def test_every_unknown_id_is_named(self, admin_a, tenant_a):
        [own] = _systems(tenant_a, 1)
        response = self.raise_incident(admin_a, [own, 987_654, "x", 876_543])
        assert response.status_code == 400
        messages = error_of(response)["fields"]["ai_systems"]
        assert len(messages) == 3
        assert any("987654" in message for message in messages)
        assert any("876543" in message for message in messages)
        assert count(Incident, tenant_a) == 0


def test_an_import_past_the_row_limit_is_refused_before_any_row(
    admin_a, tenant_a, settings, django_assert_max_num_queries
):
    # Every row is validated and written on its own (seconds per thousand): bound the work.
    settings.API_MAX_LIST_LENGTH = 1000
    text = "hostname,kind\n" + "".join(f"h-{i},cpu_node\n" for i in range(1001))
    with django_assert_max_num_queries(12):
        response = post_text(admin_a, "inventory/import/", text, "text/csv")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("At most 1000 rows per import")
    assert count(ComputeResource, tenant_a) == 0


class TestBodyLimit:
    @pytest.mark.parametrize(
        ("path", "content_type"),
        [("inventory/import/", "text/csv"), ("inventory/import/", "application/json")],
    )
    def test_every_media_type_gets_413_past_the_limit(
        self, admin_a, tenant_a, settings, path, content_type
    ):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        if content_type == "text/csv":
            body = "hostname,kind\n" + "".join(f"h-{i},cpu_node\n" for i in range(2_000))
        else:
            body = json.dumps({"compute": [{"hostname": f"h-{i}"} for i in range(2_000)]})
        assert len(body) > 10_000
        response = post_text(admin_a, path, body, content_type)
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"
        assert count(ComputeResource, tenant_a) == 0

    def test_a_body_at_the_limit_is_read(self, admin_a, tenant_a, settings):
        body = "hostname,kind\nh-1,cpu_node\n"
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)
        response = post_text(admin_a, "inventory/import/", body, "text/csv")
        assert response.status_code == 200, response.content


class TestErrorBodyCap:
    def test_only_the_first_fields_in_error_are_listed(self, admin_a, tenant_a):
        text = "hostname,kind,gpu_count\n" + "".join(f"h-{i},fridge,x\n" for i in range(600))
        response = post_text(admin_a, "inventory/import/", text, "text/csv")
        assert response.status_code == 400
        error = error_of(response)
        assert len(error["fields"]) == 1000
        assert "1200 fields have errors; the first 1000 are listed" in error["message"]
        assert {"compute.0.kind", "compute.0.gpu_count"} <= set(error["fields"])

    def test_a_message_echoing_a_long_value_is_cut(self, admin_a, tenant_a):
        body = json.dumps({"code": "s1", "name": "Site", "kind": "k" * 100_000, "country": "DE"})
        response = post_text(admin_a, "sites/", body)
        assert response.status_code == 400
        [message] = error_of(response)["fields"]["kind"]
        assert len(message) <= 500
        assert len(response.content) < 2_000


# --- 8. Read-only fields are refused, not dropped -------------------------------------------


class TestReadOnlyFields:
    @pytest.mark.parametrize(
        "extra", [{"id": 4242}, {"created_at": "2020-01-01T00:00:00Z"}], ids=["id", "created_at"]
    )
    def test_writing_a_read_only_field_is_refused(self, admin_a, tenant_a, extra):
        body = {"code": "s1", "name": "Site", "kind": "edge", "country": "DE", **extra}
        response = admin_a.client.post(f"{API}/sites/", body, format="json")
        assert response.status_code == 400
        assert error_of(response)["fields"] == {name: ["Read-only field."] for name in extra}
        assert count(Site, tenant_a) == 0

    def test_sending_back_what_was_read_is_accepted(self, admin_a, tenant_a):
        site = estate.make_site(tenant_a)
        read = admin_a.client.get(f"{API}/sites/{site.pk}/").json()
        response = admin_a.client.put(
            f"{API}/sites/{site.pk}/", {**read, "name": "Renamed"}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Renamed"

    def test_changing_a_read_only_value_is_refused(self, admin_a, tenant_a):
        site = estate.make_site(tenant_a)
        response = admin_a.client.patch(
            f"{API}/sites/{site.pk}/", {"id": site.pk + 1, "name": "Renamed"}, format="json"
        )
        assert response.status_code == 400
        assert error_of(response)["fields"] == {"id": ["Read-only field."]}
        with tenant_scope(tenant_a.id):
            assert Site.objects.get(pk=site.pk).name != "Renamed"
