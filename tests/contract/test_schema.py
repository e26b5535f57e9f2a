"""The published schema documents every error once, and the shapes it promises are the real ones."""

from __future__ import annotations

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from operations.compliance.models import Waiver
from tenants.scoping import tenant_scope

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_every_operation_documents_its_errors_with_the_one_error_body(schema):
    reference = {"$ref": "#/components/schemas/Error"}
    count = 0
    for path, method, operation in operations(schema):
        count += 1
        expected = {"401", "403", "429"}
        if "{" in path:
            expected.add("404")
        if method != "get":
            expected.add("409")
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if method != "get":
            expected.add("400")
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            expected.add("400")
        responses = operation["responses"]
        assert expected <= set(responses), (method, path, expected - set(responses))
        for status in expected:
            assert responses[status]["content"]["application/json"]["schema"] == reference
    assert count > 100


def test_the_error_component_describes_the_real_error_body(schema, admin_a):
    component = {**schema["components"]["schemas"]["Error"], "components": schema["components"]}
    bodies = [
        admin_a.client.get("/api/v1/tenants/acme/incidents/987654321/").json(),
        admin_a.client.post("/api/v1/tenants/acme/incidents/", {"title": ""}).json(),
        admin_a.client.get("/api/v1/tenants/acme/incidents/", {"severity": "SEV9"}).json(),
    ]
    for body in bodies:
        jsonschema.validate(body, component)
    assert "fields" in bodies[1]["error"]


def test_a_paginated_list_documents_the_404_of_a_page_past_the_end(schema, admin_a):
    responses = schema["paths"]["/api/v1/tenants/"]["get"]["responses"]
    assert "404" in responses
    assert admin_a.client.get("/api/v1/tenants/", {"page": 0}).status_code == 404


@pytest.mark.parametrize(
    "route",
    [
        "telemetry/samples/",
        "telemetry/prometheus/",
        "telemetry/remote-write/",
        "inventory/import/",
    ],
)
def test_options_on_a_view_that_reads_its_own_body_is_not_a_500(admin_a, route):
    response = admin_a.client.options(f"/api/v1/tenants/acme/{route}")
    assert response.status_code == 200
    assert "POST" in response["Allow"]


def test_the_check_catalogue_is_documented_as_it_is_served(schema, admin_a):
    documented = schema["paths"]["/api/v1/compliance/checks/"]["get"]["responses"]["200"]
    ref = documented["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    component = {**schema["components"]["schemas"][ref], "components": schema["components"]}
    jsonschema.validate(admin_a.client.get("/api/v1/compliance/checks/").json(), component)


def test_values_the_api_serves_fit_their_documented_fields(schema):
    components = schema["components"]["schemas"]
    # Served as "08:00:00": OpenAPI's format "time" would demand an offset.
    assert components["ServicePlan"]["properties"]["business_hours_start"].get("format") != "time"
    # null while nobody created the waiver / no policy row exists yet.
    assert components["Waiver"]["properties"]["created_by"].get("nullable") is True
    assert components["TelemetryPolicy"]["properties"]["updated_at"].get("nullable") is True
    # Blank is served; the alternatives of a oneOf must not both match it.
    country = components["Dataset"]["properties"]["residency_country"]
    matching = [alt for alt in country["oneOf"] if _matches("", alt)]
    assert len(matching) == 1
    # Read-only choices served blank document the blank alternative.
    kind = components["Incident"]["properties"]["serious_kind"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in kind["oneOf"]
    # A user without an email is served with "", which format "email" refuses.
    assert components["UserBrief"]["properties"]["email"].get("format") != "email"


def _matches(value, alternative) -> bool:
    try:
        jsonschema.validate(value, alternative, format_checker=jsonschema.FormatChecker())
    except jsonschema.ValidationError:
        return False
    return True


def test_a_waiver_without_creator_keeps_created_by_after_a_patch(admin_a, tenant_a):
    """DRF skips a dotted-source default on partial updates: the PATCH answer lost the field."""
    with tenant_scope(tenant_a.id):
        waiver = Waiver.objects.create(
            tenant=tenant_a,
            check_code="ai_system.accountable_owner",
            reason="Owner being recruited.",
            approved_by="CISO",
            expires_at="2999-01-01T00:00:00Z",
        )
    url = f"/api/v1/tenants/acme/compliance/waivers/{waiver.pk}/"
    response = admin_a.client.patch(url, {"reason": "Still recruiting."})
    assert response.status_code == 200, response.content
    assert response.json()["created_by"] is None


CSV_LISTS = [
    "/api/v1/tenants/{tenant_slug}/incidents/",
    "/api/v1/tenants/{tenant_slug}/compliance/findings/",
    "/api/v1/tenants/{tenant_slug}/recommendations/",
    "/api/v1/tenants/{tenant_slug}/audit/",
    "/api/v1/audit/",
]


@pytest.mark.parametrize("path", CSV_LISTS)
def test_lists_that_answer_csv_document_it_as_text(schema, path):
    operation = schema["paths"][path]["get"]
    content = operation["responses"]["200"]["content"]
    assert content["text/csv"]["schema"]["type"] == "string"
    assert "Paginated" in content["application/json"]["schema"]["$ref"]
    parameter = next(p for p in operation["parameters"] if p["name"] == "format")
    assert sorted(parameter["schema"]["enum"]) == ["csv", "json"]
