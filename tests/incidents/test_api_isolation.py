"""Isolation proofs for every incident route: list, detail, edit, actions, timeline, export,
postmortem and metrics, and the alert rules. A foreign object and a missing one give the same
404."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from operations.incidents import services
from operations.incidents.models import AlertRule, Incident, Postmortem
from tenants.scoping import tenant_scope
from tests.incidents.alerting import alert_incidents, feed, make_rule, rule_fields
from tests.incidents.factories import act, make_incident
from tests.inventory.estate import make_gpu_node
from tests.isolation import TenantIsolationTests

pytestmark = pytest.mark.django_db

STAFF_ACTIONS = (
    "acknowledge",
    "investigate",
    "mitigate",
    "resolve",
    "close",
    "reopen",
    "assign",
    "comment",
    "severity",
    "wait-on-client",
    "resume",
)


class TestIncidentIsolation(TenantIsolationTests):
    resource = "incidents"
    model = Incident
    actor_fixture = "engineer_a"
    can_delete = False
    detail_actions = STAFF_ACTIONS
    update_payload = {"title": "Renamed"}
    csv_list = True

    def csv_key(self, obj) -> str:
        return obj.reference

    def make_object(self, tenant):
        return make_incident(tenant)

    def create_payload(self, tenant):
        return {"title": "Endpoint down", "category": "outage", "severity": "SEV1"}

    @pytest.fixture
    def resolved_pair(self, tenant_a, tenant_b):
        """A resolved SEV1 with a postmortem in each tenant."""
        pair = []
        for tenant in (tenant_a, tenant_b):
            incident = act(
                tenant, services.incident_resolve, make_incident(tenant, severity="SEV1")
            )
            act(tenant, services.postmortem_save, incident, summary=f"{tenant.slug} summary")
            pair.append(incident)
        return pair

    @pytest.mark.parametrize("sub", ["timeline", "export", "postmortem"])
    def test_foreign_sub_resources_are_the_same_404(self, caller, resolved_pair, tenant_a, sub):
        own, foreign = resolved_pair
        assert caller.client.get(self.url(tenant_a.slug, own.pk, sub)).status_code == 200
        response = caller.client.get(self.url(tenant_a.slug, foreign.pk, sub))
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)

    def test_foreign_postmortem_cannot_be_written(self, caller, resolved_pair, tenant_a):
        _own, foreign = resolved_pair
        response = caller.client.put(
            self.url(tenant_a.slug, foreign.pk, "postmortem"), {"summary": "overwritten"}
        )
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        with tenant_scope(foreign.tenant_id):
            assert Postmortem.objects.get(incident_id=foreign.pk).summary == "borealis summary"

    def test_metrics_count_only_the_url_tenant(self, caller, objects, tenant_a, tenant_b):
        response = caller.client.get(f"/api/v1/tenants/{tenant_a.slug}/incidents/metrics")
        assert response.status_code == 200
        assert response.json()["overall"]["incidents"] == 1
        foreign = caller.client.get(f"/api/v1/tenants/{tenant_b.slug}/incidents/metrics")
        assert foreign.status_code == 404
        assert foreign.content == self.not_found_body(caller, tenant_a)

    def test_list_export_shows_only_the_url_tenant(self, caller, objects, tenant_a, tenant_b):
        own, foreign = objects
        response = caller.client.get(f"/api/v1/tenants/{tenant_a.slug}/incidents/export/")
        assert response.status_code == 200
        text = response.getvalue().decode()
        assert own.reference in text
        assert foreign.reference not in text
        assert len(text.strip().splitlines()) == 1 + 1
        foreign_export = caller.client.get(f"/api/v1/tenants/{tenant_b.slug}/incidents/export/")
        assert foreign_export.status_code == 404
        assert foreign_export.content == self.not_found_body(caller, tenant_a)

    def test_fleet_metrics_list_only_visible_tenants(self, caller, objects):
        rows = caller.client.get("/api/v1/incidents/metrics").json()["results"]
        assert [row["tenant"]["slug"] for row in rows] == ["acme"]

    def test_assigning_someone_from_another_tenant_is_refused(
        self, caller, objects, tenant_a, engineer_b
    ):
        own, _foreign = objects
        response = caller.client.post(
            self.url(tenant_a.slug, own.pk, "assign"), {"assignee": engineer_b.user.pk}
        )
        assert response.status_code == 400
        assert "assignee" in response.json()["error"]["fields"]


class TestIncidentIsolationForClients(TenantIsolationTests):
    """The same proofs for a tenant admin, who raises, comments, closes and reopens."""

    resource = "incidents"
    model = Incident
    actor_fixture = "admin_a"
    can_update = False  # clients do not edit incidents in place (403 before any lookup)
    can_delete = False
    detail_actions = ("comment", "close", "reopen")

    def make_object(self, tenant):
        return make_incident(tenant)

    def create_payload(self, tenant):
        return {"title": "Chatbot answers in German", "category": "model_quality"}

    def test_affected_estate_from_another_tenant_does_not_exist(self, caller, tenant_a, tenant_b):
        from operations.inventory.models import AISystem
        from tenants.owned import owned_object_create

        with tenant_scope(tenant_b.id):
            foreign_system = owned_object_create(
                tenant=tenant_b, model=AISystem, data={"name": "Borealis credit model"}
            )
        response = caller.client.post(
            self.url(tenant_a.slug),
            {"title": "x", "category": "outage", "ai_systems": [foreign_system.pk]},
        )
        assert response.status_code == 400
        assert "ai_systems" in response.json()["error"]["fields"]
        assert self.rows_of(tenant_a) == set()


class TestAlertRuleIsolation(TenantIsolationTests):
    """Alert rules: CRUD, the rules in force and evaluate-now stay inside the URL's tenant."""

    resource = "alert-rules"
    model = AlertRule
    actor_fixture = "admin_a"
    update_payload = {"threshold": 95}

    def make_object(self, tenant):
        return make_rule(tenant, name=f"{tenant.slug} saturated")

    def create_payload(self, tenant):
        return rule_fields(name="Created")

    def test_in_force_lists_only_the_url_tenants_rules(self, caller, objects, tenant_a, tenant_b):
        own, _foreign = objects
        rows = caller.client.get(self.url(tenant_a.slug, action="in-force")).json()["results"]
        assert [row["id"] for row in rows] == [own.pk]
        response = caller.client.get(self.url(tenant_b.slug, action="in-force"))
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)

    def test_evaluating_another_tenant_is_the_same_404_and_writes_nothing(
        self, caller, objects, tenant_a, tenant_b
    ):
        make_gpu_node(tenant_b, hostname="borealis-gpu-01")
        start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
        feed(tenant_b, "compute:borealis-gpu-01", "gpu_utilization", [97.0] * 7, start=start)
        response = caller.client.post(self.url(tenant_b.slug, action="evaluate"), {})
        assert response.status_code == 404
        assert response.content == self.not_found_body(caller, tenant_a)
        assert alert_incidents(tenant_b) == []
        # A's own evaluation sees A's rule and none of B's samples.
        own = caller.client.post(self.url(tenant_a.slug, action="evaluate"), {}).json()
        assert (own["rules"], own["outcomes"]) == (1, [])
        assert alert_incidents(tenant_b) == []

    def test_a_foreign_override_target_is_only_a_default(self, caller, objects, tenant_a):
        # default_rule refers to MSP-wide defaults; another tenant's rule id is not one.
        _own, foreign = objects
        response = caller.client.post(self.url(tenant_a.slug), {"default_rule": foreign.pk})
        assert response.status_code == 400
        assert "default_rule" in response.json()["error"]["fields"]
