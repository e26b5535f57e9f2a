"""Incident API: who may do what, refused input, visibility of internal entries through every
door, filters, query budgets, postmortems and metrics on known data."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from operations.events.models import OutboxEvent
from operations.incidents import services
from operations.incidents.models import Incident, Postmortem, TimelineEntry
from operations.inventory.models import AISystem
from tenants import services as tenant_services
from tenants.models import AuditEvent, MspRole, TenantStatus
from tenants.owned import owned_object_create
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_staff, make_token
from tests.incidents.factories import act, fresh, make_incident

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tenants/acme/incidents/"
SECRET = "internal: customer's firewall change broke it, do not tell them yet"
T0 = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)


def url(pk=None, action=None) -> str:
    result = BASE
    if pk is not None:
        result += f"{pk}/"
    if action:
        result += f"{action}/"
    return result


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return body["error"].get("fields", {})


def written(tenant) -> tuple[int, int, int, int]:
    """Incidents, timeline entries, outbox events and incident audit events of a tenant."""
    with tenant_scope(tenant.id):
        return (
            Incident.objects.count(),
            TimelineEntry.objects.count(),
            # Incident events only: the fixtures' API tokens write ``token.created``.
            OutboxEvent.objects.filter(topic__startswith="incident.").count(),
            AuditEvent.objects.filter(tenant=tenant, object_type__startswith="incidents.").count(),
        )


# --- Raising incidents ------------------------------------------------------------------------


class TestRaise:
    def test_a_client_raises_an_incident_through_the_api(self, member_a, tenant_a):
        response = member_a.client.post(
            BASE,
            {
                "title": "Fraud scoring times out",
                "description": "Since 09:10",
                "severity": "SEV2",
                "category": "performance",
            },
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["reference"] == "ACME-1"
        assert (body["status"], body["source"], body["reporter_name"]) == (
            "triggered",
            "api",
            "acme-member",
        )
        assert body["ack_due_at"]
        assert body["resolve_due_at"]
        assert body["allowed_actions"] == ["comment"]  # the rest is for MSP staff
        with tenant_scope(tenant_a.id):
            event = OutboxEvent.objects.get(topic__startswith="incident.")
        assert (event.topic, event.payload["reference"]) == ("incident.opened", "ACME-1")

    def test_severity_defaults_to_sev3(self, admin_a):
        response = admin_a.client.post(BASE, {"title": "Odd answers", "category": "model_quality"})
        assert response.json()["severity"] == "SEV3"

    def test_affected_estate_is_recorded(self, admin_a, tenant_a):
        with tenant_scope(tenant_a.id):
            system = owned_object_create(tenant=tenant_a, model=AISystem, data={"name": "Fraud"})
        response = admin_a.client.post(
            BASE, {"title": "Drift", "category": "model_quality", "ai_systems": [system.pk]}
        )
        assert response.json()["ai_systems"] == [system.pk]

    @pytest.mark.parametrize("fixture", ["viewer_a", "analyst_a"])
    def test_viewers_and_analysts_cannot_raise(self, request, fixture, tenant_a):
        actor = request.getfixturevalue(fixture)
        response = actor.client.post(BASE, {"title": "x", "category": "outage"})
        assert response.status_code == 403
        assert written(tenant_a) == (0, 0, 0, 0)

    def test_a_suspended_tenants_clients_read_only(self, admin_a, engineer_a, tenant_a):
        tenant_services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
        tenant_a.status = TenantStatus.SUSPENDED
        tenant_a.save()
        assert admin_a.client.post(BASE, {"title": "x", "category": "outage"}).status_code == 403
        assert admin_a.client.get(BASE).status_code == 200
        assert engineer_a.client.post(BASE, {"title": "x", "category": "outage"}).status_code == 201

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"category": "outage"}, "title"),
            ({"title": "", "category": "outage"}, "title"),
            ({"title": "x" * 201, "category": "outage"}, "title"),
            ({"title": "x"}, "category"),
            ({"title": "x", "category": "weather"}, "category"),
            ({"title": "x", "category": "outage", "severity": "SEV0"}, "severity"),
            ({"title": "x", "category": "outage", "description": "d" * 10001}, "description"),
            ({"title": "x", "category": "outage", "ai_systems": "one"}, "ai_systems"),
            ({"title": "x", "category": "outage", "ai_systems": [987654]}, "ai_systems"),
            ({"title": "x", "category": "outage", "status": "resolved"}, "status"),
            ({"title": "x", "category": "outage", "reference": "ACME-9"}, "reference"),
            ({"title": "x", "category": "outage", "assignee": 1}, "assignee"),
            ({"title": ["x"], "category": "outage"}, "title"),
        ],
        ids=[
            "missing-title",
            "blank-title",
            "long-title",
            "missing-category",
            "bad-category",
            "bad-severity",
            "long-description",
            "estate-not-a-list",
            "estate-missing",
            "status-is-not-input",
            "reference-is-not-input",
            "assignee-is-not-input",
            "wrong-type",
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, engineer_a, tenant_a, payload, field
    ):
        response = engineer_a.client.post(BASE, payload)
        assert response.status_code == 400, response.content
        assert field in error_fields(response)
        assert written(tenant_a) == (0, 0, 0, 0)

    def test_a_duplicate_open_dedupe_key_is_refused(self, engineer_a, tenant_a):
        payload = {"title": "x", "category": "outage", "dedupe_key": "xid:7"}
        assert engineer_a.client.post(BASE, payload).status_code == 201
        before = written(tenant_a)
        response = engineer_a.client.post(BASE, payload)
        assert response.status_code == 400
        assert "ACME-1" in error_fields(response)["dedupe_key"][0]
        assert written(tenant_a) == before


# --- Lifecycle through the API --------------------------------------------------------------


class TestLifecycle:
    def test_staff_walk_the_lifecycle(self, engineer_a, tenant_a):
        pk = make_incident(tenant_a).pk
        for action, status in (
            ("acknowledge", "acknowledged"),
            ("investigate", "investigating"),
            ("mitigate", "mitigated"),
            ("investigate", "investigating"),
            ("resolve", "resolved"),
            ("reopen", "investigating"),
            ("resolve", "resolved"),
            ("close", "closed"),
        ):
            response = engineer_a.client.post(url(pk, action))
            assert response.status_code == 200, (action, response.content)
            assert response.json()["status"] == status
        assert response.json()["allowed_actions"] == []

    @pytest.mark.parametrize("action", ["investigate", "mitigate", "close", "reopen", "resume"])
    def test_refused_transitions_are_400_naming_status(self, engineer_a, tenant_a, action):
        incident = make_incident(tenant_a)
        before = written(tenant_a)
        response = engineer_a.client.post(url(incident.pk, action))
        assert response.status_code == 400
        assert "status" in error_fields(response)
        assert fresh(incident).status == "triggered"
        assert written(tenant_a) == before

    def test_the_refusal_says_what_is_possible(self, engineer_a, tenant_a):
        incident = make_incident(tenant_a)
        message = error_fields(engineer_a.client.post(url(incident.pk, "close")))["status"][0]
        assert message == (
            "Cannot close an incident that is triggered; it must be resolved. "
            "Possible now: acknowledge, resolve."
        )

    @pytest.mark.parametrize(
        "action",
        ["acknowledge", "investigate", "mitigate", "resolve", "assign", "severity"],
    )
    def test_clients_cannot_work_the_incident(self, admin_a, tenant_a, action):
        incident = make_incident(tenant_a)
        response = admin_a.client.post(url(incident.pk, action), {})
        assert response.status_code == 403
        assert fresh(incident).status == "triggered"

    def test_clients_confirm_or_dispute_a_resolution(self, admin_a, member_a, tenant_a):
        incident = act(tenant_a, services.incident_resolve, make_incident(tenant_a))
        reopened = member_a.client.post(url(incident.pk, "reopen"), {"note": "Still slow"})
        assert reopened.status_code == 200
        assert reopened.json()["status"] == "investigating"
        act(tenant_a, services.incident_resolve, incident)
        closed = admin_a.client.post(url(incident.pk, "close"))
        assert closed.json()["status"] == "closed"
        with tenant_scope(tenant_a.id):
            note = TimelineEntry.objects.get(kind="comment")
        assert (note.body, note.internal) == ("Still slow", False)

    def test_analysts_and_viewers_only_read(self, analyst_a, viewer_a, tenant_a):
        incident = make_incident(tenant_a)
        for actor in (analyst_a, viewer_a):
            assert actor.client.get(url(incident.pk)).status_code == 200
            for action in ("acknowledge", "comment", "close"):
                assert actor.client.post(url(incident.pk, action), {"body": "x"}).status_code == 403
        assert written(tenant_a)[1] == 1  # only the "created" entry

    def test_delete_is_not_offered(self, msp_admin, tenant_a):
        incident = make_incident(tenant_a)
        assert msp_admin.client.delete(url(incident.pk)).status_code == 405
        assert msp_admin.client.put(url(incident.pk), {"title": "x"}).status_code == 405

    def test_assign_severity_and_waiting(self, engineer_a, tenant_a):
        incident = make_incident(tenant_a, severity="SEV3")
        assigned = engineer_a.client.post(
            url(incident.pk, "assign"), {"assignee": engineer_a.user.pk}
        )
        assert assigned.json()["assignee_name"] == "eng-a"
        bad = engineer_a.client.post(url(incident.pk, "assign"), {"assignee": 987654})
        assert "assignee" in error_fields(bad)
        missing = engineer_a.client.post(url(incident.pk, "assign"), {})
        assert "assignee" in error_fields(missing)
        raised = engineer_a.client.post(url(incident.pk, "severity"), {"severity": "SEV1"})
        assert (raised.json()["severity"], raised.json()["ack_target_minutes"]) == ("SEV1", 15)
        bad = engineer_a.client.post(url(incident.pk, "severity"), {"severity": "SEV9"})
        assert "severity" in error_fields(bad)
        engineer_a.client.post(url(incident.pk, "acknowledge"))
        waiting = engineer_a.client.post(url(incident.pk, "wait-on-client"), {"reason": "Logs?"})
        assert waiting.json()["waiting_on_client"] is True
        assert waiting.json()["resolve_due_at"] is None
        assert waiting.json()["allowed_actions"][-1] == "resume"
        unknown = engineer_a.client.post(url(incident.pk, "resume"), {"when": "now"})
        assert "when" in error_fields(unknown)
        resumed = engineer_a.client.post(url(incident.pk, "resume"))
        assert resumed.json()["waiting_on_client"] is False
        assert resumed.json()["resolve_due_at"] is not None


@pytest.mark.parametrize(
    ("action", "payload", "field"),
    [
        ("comment", {}, "body"),
        ("comment", {"body": ""}, "body"),
        ("comment", {"body": "x" * 10001}, "body"),
        ("comment", {"body": "x", "internal": "perhaps"}, "internal"),
        ("comment", {"body": "x", "visibility": "all"}, "visibility"),
        ("acknowledge", {"note": ["x"]}, "note"),
        ("acknowledge", {"status": "closed"}, "status"),
        ("assign", {"assignee": "me"}, "assignee"),
        ("severity", {}, "severity"),
        ("severity", {"severity": "SEV1", "reason": "r" * 10001}, "reason"),
        ("wait-on-client", {"reason": "r" * 10001}, "reason"),
    ],
)
def test_bad_action_bodies_name_the_field_and_write_nothing(
    engineer_a, tenant_a, action, payload, field
):
    incident = make_incident(tenant_a)
    if action == "wait-on-client":
        engineer_a.client.post(url(incident.pk, "acknowledge"))
    before = written(tenant_a)
    response = engineer_a.client.post(url(incident.pk, action), payload)
    assert response.status_code == 400, response.content
    assert field in error_fields(response)
    assert written(tenant_a) == before


class TestEdit:
    def test_staff_edit_in_place_and_flag_a_serious_incident(self, engineer_a, tenant_a):
        incident = make_incident(tenant_a)
        response = engineer_a.client.patch(
            url(incident.pk),
            {
                "title": "Credit model drift",
                "serious": True,
                "serious_kind": "death",
                "aware_at": "2026-01-10T08:00:00Z",
            },
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["title"] == "Credit model drift"
        assert body["regulator_deadline"] == "2026-01-20T08:00:00Z"
        assert body["regulator_overdue"] is True
        overdue = engineer_a.client.get(BASE, {"regulator_overdue": "true"}).json()["results"]
        assert [row["id"] for row in overdue] == [incident.pk]
        notified = engineer_a.client.patch(
            url(incident.pk), {"regulator_notified_at": "2026-01-12T08:00:00Z"}
        )
        assert notified.json()["regulator_overdue"] is False

    @pytest.mark.parametrize(
        ("payload", "field", "words"),
        [
            ({"status": "resolved"}, "status", "…/resolve"),
            ({"severity": "SEV1"}, "severity", "…/severity"),
            ({"assignee": 1}, "assignee", "…/assign"),
            ({"serious_kind": "meteor"}, "serious_kind", ""),
            ({"serious": True, "aware_at": "2999-01-01T00:00:00Z"}, "aware_at", "future"),
            ({"aware_at": "yesterday"}, "aware_at", ""),
            ({"category": "weather"}, "category", ""),
            ({"reference": "ACME-99"}, "reference", ""),
        ],
    )
    def test_bad_edits_name_the_field_and_change_nothing(
        self, engineer_a, tenant_a, payload, field, words
    ):
        incident = make_incident(tenant_a)
        before = written(tenant_a)
        response = engineer_a.client.patch(url(incident.pk), payload)
        assert response.status_code == 400
        assert field in error_fields(response)
        assert words in error_fields(response)[field][0]
        assert written(tenant_a) == before
        assert fresh(incident).status == "triggered"

    def test_clients_cannot_edit(self, admin_a, tenant_a):
        incident = make_incident(tenant_a)
        assert admin_a.client.patch(url(incident.pk), {"title": "mine"}).status_code == 403


# --- Internal entries are invisible to clients through every door ---------------------------


@pytest.fixture
def with_internal(tenant_a, engineer_a):
    """An incident with client-visible and internal entries, as staff would write them."""
    incident = make_incident(tenant_a, severity="SEV1")
    engineer_a.client.post(url(incident.pk, "comment"), {"body": SECRET})  # staff default
    engineer_a.client.post(
        url(incident.pk, "comment"), {"body": "We are on it.", "internal": False}
    )
    engineer_a.client.post(url(incident.pk, "acknowledge"), {"note": SECRET})
    engineer_a.client.post(url(incident.pk, "resolve"), {"note": SECRET, "internal": True})
    return incident


class TestVisibility:
    def test_staff_comments_default_to_internal(self, with_internal, tenant_a):
        with tenant_scope(tenant_a.id):
            comments = TimelineEntry.objects.filter(kind="comment").order_by("id")
            assert [c.internal for c in comments] == [True, False, True, True]

    def test_clients_cannot_write_internal_notes(self, admin_a, tenant_a, with_internal):
        before = written(tenant_a)
        response = admin_a.client.post(
            url(with_internal.pk, "comment"), {"body": "x", "internal": True}
        )
        assert response.status_code == 400
        assert error_fields(response) == {"internal": ["Only MSP staff can write internal notes."]}
        reopen = admin_a.client.post(
            url(with_internal.pk, "reopen"), {"note": "x", "internal": True}
        )
        assert "internal" in error_fields(reopen)
        assert written(tenant_a) == before
        ok = admin_a.client.post(url(with_internal.pk, "comment"), {"body": "Thanks!"})
        assert ok.status_code == 201
        assert ok.json()["internal"] is False

    def test_the_api_never_shows_clients_internal_entries(
        self, admin_a, viewer_a, engineer_a, with_internal
    ):
        pk = with_internal.pk
        for actor in (admin_a, viewer_a):
            listed = actor.client.get(BASE).json()["results"][0]
            detail = actor.client.get(url(pk)).json()
            timeline = actor.client.get(url(pk, "timeline")).json()["results"]
            assert listed["timeline_count"] == len(detail["timeline"]) == len(timeline) == 4
            for payload in (listed, detail, timeline):
                assert SECRET not in str(payload)
                assert "'internal': True" not in str(payload)
        staff = engineer_a.client.get(url(pk)).json()
        assert staff["timeline_count"] == len(staff["timeline"]) == 7
        assert SECRET in str(staff["timeline"])

    def test_exports_never_show_clients_internal_entries(self, admin_a, engineer_a, with_internal):
        client_csv = admin_a.client.get(url(with_internal.pk, "export"))
        assert client_csv.status_code == 200
        assert client_csv["Content-Type"] == "text/csv"
        assert 'filename="ACME-1-timeline.csv"' in client_csv["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(client_csv.content.decode())))
        assert rows[0][:3] == ["incident", "time (UTC)", "kind"]
        assert len(rows) == 1 + 4
        assert SECRET not in client_csv.content.decode()
        assert {row[3] for row in rows[1:]} == {"client-visible"}
        staff_csv = engineer_a.client.get(url(with_internal.pk, "export")).content.decode()
        assert SECRET in staff_csv

    def test_the_export_defuses_spreadsheet_formulas(self, admin_a, tenant_a):
        incident = make_incident(tenant_a)
        admin_a.client.post(url(incident.pk, "comment"), {"body": '=HYPERLINK("evil")'})
        text = admin_a.client.get(url(incident.pk, "export")).content.decode()
        assert "'=HYPERLINK" in text

    def test_postmortem_draft_takes_only_client_visible_entries(
        self, admin_a, engineer_a, with_internal
    ):
        response = engineer_a.client.put(
            url(with_internal.pk, "postmortem"), {"summary": "Firewall change"}
        )
        assert response.status_code == 201, response.content
        excerpt = response.json()["timeline_excerpt"]
        assert "We are on it." in excerpt
        assert SECRET not in excerpt
        assert SECRET not in str(admin_a.client.get(url(with_internal.pk, "postmortem")).json())

    def test_the_audit_log_never_carries_internal_words(self, admin_a, with_internal):
        response = admin_a.client.get("/api/v1/tenants/acme/audit/", {"page_size": 500})
        assert response.status_code == 200
        assert response.json()["count"] > 0
        assert SECRET not in response.content.decode()

    def test_outbox_payloads_never_carry_internal_entries(self, with_internal, tenant_a):
        with tenant_scope(tenant_a.id):
            payloads = list(OutboxEvent.objects.values_list("payload", flat=True))
        assert len(payloads) == 3
        assert all(SECRET not in str(payload) for payload in payloads)


# --- Filters and query budgets --------------------------------------------------------------


class TestList:
    def test_filters(self, engineer_a, tenant_a):
        open_one = make_incident(tenant_a, severity="SEV2", title="Open")
        breached = make_incident(tenant_a, severity="SEV1", at=T0, title="Breached")
        with tenant_scope(tenant_a.id):
            services.incident_sla_breaches_mark(tenant=tenant_a)
        done = act(tenant_a, services.incident_resolve, make_incident(tenant_a, title="Done"))

        def ids(**params):
            response = engineer_a.client.get(BASE, params)
            assert response.status_code == 200, response.content
            return {row["id"] for row in response.json()["results"]}

        assert ids(open="true") == {open_one.pk, breached.pk}
        assert ids(open="false") == {done.pk}
        assert ids(breached="true") == {breached.pk}
        assert ids(status=["resolved", "triggered"]) == {open_one.pk, breached.pk, done.pk}
        assert ids(severity="SEV1") == {breached.pk}
        assert ids(search="Breach") == {breached.pk}
        assert ids(reference="acme-1") == {open_one.pk}
        assert ids(breaching_within=20) == set()  # SEV2: acknowledge within 30 minutes
        assert ids(breaching_within=60) == {open_one.pk}
        assert ids(unassigned="true") == {open_one.pk, breached.pk, done.pk}
        ordered = engineer_a.client.get(BASE, {"ordering": "number"}).json()["results"]
        assert [row["reference"] for row in ordered] == ["ACME-1", "ACME-2", "ACME-3"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "sleeping"}, "status"),
            ({"breaching_within": "soon"}, "breaching_within"),
            ({"open": "maybe"}, "open"),
            ({"created_after": "last week"}, "created_after"),
        ],
    )
    def test_bad_filters_name_the_field(self, engineer_a, tenant_a, params, field):
        response = engineer_a.client.get(BASE, params)
        assert response.status_code == 400
        assert field in error_fields(response)

    @pytest.mark.parametrize("fixture", ["engineer_a", "admin_a"])
    def test_the_list_costs_the_same_queries_whatever_its_length(self, request, tenant_a, fixture):
        actor = request.getfixturevalue(fixture)
        with tenant_scope(tenant_a.id):
            system = owned_object_create(tenant=tenant_a, model=AISystem, data={"name": "Fraud"})

        def add(count):
            for index in range(count):
                incident = make_incident(tenant_a, title=f"#{index}", ai_systems=[system])
                act(tenant_a, services.incident_assign, incident, assignee=None)
                act(tenant_a, services.incident_comment, incident, body="hm", internal=True)
                act(tenant_a, services.incident_acknowledge, incident)

        actor.client.get(BASE)  # the token's first use of the minute stamps last_used_at

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                response = actor.client.get(BASE, {"page_size": 100})
                assert response.status_code == 200
            return len(captured), len(response.json()["results"])

        add(2)
        few, rows = queries()
        assert rows == 2
        add(10)
        many, rows = queries()
        assert rows == 12
        assert many == few


# --- Postmortems ----------------------------------------------------------------------------


class TestPostmortem:
    @pytest.fixture
    def resolved_sev1(self, tenant_a):
        return act(tenant_a, services.incident_resolve, make_incident(tenant_a, severity="SEV1"))

    def test_staff_write_and_everyone_reads(self, engineer_a, admin_a, viewer_a, resolved_sev1):
        pm_url = url(resolved_sev1.pk, "postmortem")
        assert admin_a.client.get(pm_url).status_code == 404
        payload = {
            "summary": "A riser cable failed.",
            "impact": "Two runs restarted.",
            "root_cause": "Rack move",
            "action_items": [
                {"description": "Inspect cables", "owner": "Colo", "due_date": "2026-02-01"},
                {"description": "Per-GPU alerts", "owner": "MSP", "done": True},
            ],
        }
        created = engineer_a.client.put(pm_url, payload)
        assert created.status_code == 201, created.content
        assert created.json()["incident"] == "ACME-1"
        assert created.json()["action_items"] == [
            {
                "description": "Inspect cables",
                "owner": "Colo",
                "due_date": "2026-02-01",
                "done": False,
            },
            {"description": "Per-GPU alerts", "owner": "MSP", "due_date": None, "done": True},
        ]
        for reader in (admin_a, viewer_a):
            assert reader.client.get(pm_url).json()["summary"] == "A riser cable failed."
        assert admin_a.client.put(pm_url, payload).status_code == 403
        replaced = engineer_a.client.put(pm_url, {"summary": "Rewritten", "action_items": []})
        assert replaced.status_code == 200
        assert replaced.json()["action_items"] == []
        assert replaced.json()["timeline_excerpt"] == created.json()["timeline_excerpt"]

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "summary"),
            ({"summary": ""}, "summary"),
            ({"summary": "x", "action_items": [{"description": "d"}]}, "action_items.0.owner"),
            (
                {
                    "summary": "x",
                    "action_items": [{"owner": "o", "description": "d", "due_date": "soon"}],
                },
                "action_items.0.due_date",
            ),
            ({"summary": "x", "action_items": "none"}, "action_items"),
            ({"summary": "x", "author": "me"}, "author"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, engineer_a, tenant_a, resolved_sev1, payload, field
    ):
        response = engineer_a.client.put(url(resolved_sev1.pk, "postmortem"), payload)
        assert response.status_code == 400
        assert any(name == field or name.startswith(f"{field}.") for name in error_fields(response))
        with tenant_scope(tenant_a.id):
            assert not Postmortem.objects.exists()

    def test_only_resolved_sev1_and_sev2(self, engineer_a, tenant_a):
        minor = act(tenant_a, services.incident_resolve, make_incident(tenant_a, severity="SEV3"))
        refused = engineer_a.client.put(url(minor.pk, "postmortem"), {"summary": "x"})
        assert "severity" in error_fields(refused)
        still_open = make_incident(tenant_a, severity="SEV2")
        refused = engineer_a.client.put(url(still_open.pk, "postmortem"), {"summary": "x"})
        assert "status" in error_fields(refused)
        with tenant_scope(tenant_a.id):
            assert not Postmortem.objects.exists()


# --- Metrics ------------------------------------------------------------------------------


@pytest.fixture
def known_incidents(tenant_a, tenant_b):
    """SEV1 met, SEV1 breached twice, SEV2 acknowledged in time, one outside the window."""
    minute = dt.timedelta(minutes=1)
    met = make_incident(tenant_a, severity="SEV1", at=T0)
    act(tenant_a, services.incident_acknowledge, met, at=T0 + 10 * minute)
    act(tenant_a, services.incident_resolve, met, at=T0 + 100 * minute)
    late = make_incident(tenant_a, severity="SEV1", at=T0)
    act(tenant_a, services.incident_acknowledge, late, at=T0 + 30 * minute)
    act(tenant_a, services.incident_resolve, late, at=T0 + 300 * minute)
    ongoing = make_incident(tenant_a, severity="SEV2", at=T0)
    act(tenant_a, services.incident_acknowledge, ongoing, at=T0 + 25 * minute)
    make_incident(tenant_a, severity="SEV3", at=T0 - dt.timedelta(days=2))
    other = make_incident(tenant_b, severity="SEV4", at=T0)
    act(tenant_b, services.incident_acknowledge, other, at=T0 + 60 * minute)


WINDOW = {"from": "2026-01-14T09:00:00Z", "to": "2026-01-15"}


class TestMetrics:
    def test_tenant_metrics_on_known_data(self, admin_a, known_incidents):
        response = admin_a.client.get(url(action="metrics"), WINDOW)
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["from"], body["to"]) == ("2026-01-14T09:00:00Z", "2026-01-15T00:00:00Z")
        by_severity = {row.pop("severity"): row for row in body["by_severity"]}
        assert by_severity["SEV1"] == {
            "incidents": 2,
            "acknowledged": 2,
            "resolved": 2,
            "mtta_seconds": 1200.0,  # (10 + 30) / 2 minutes
            "mttr_seconds": 12000.0,  # (100 + 300) / 2 minutes
            "ack_sla_attainment": 0.5,
            "resolve_sla_attainment": 0.5,
            "ack_breaches": 1,
            "resolve_breaches": 1,
        }
        assert by_severity["SEV2"] == {
            "incidents": 1,
            "acknowledged": 1,
            "resolved": 0,
            "mtta_seconds": 1500.0,
            "mttr_seconds": None,
            "ack_sla_attainment": 1.0,
            "resolve_sla_attainment": None,
            "ack_breaches": 0,
            "resolve_breaches": 0,
        }
        assert by_severity["SEV3"]["incidents"] == by_severity["SEV4"]["incidents"] == 0
        assert body["overall"] == {
            "incidents": 3,
            "acknowledged": 3,
            "resolved": 2,
            "mtta_seconds": 1300.0,
            "mttr_seconds": 12000.0,
            "ack_sla_attainment": 0.6667,
            "resolve_sla_attainment": 0.5,
            "ack_breaches": 1,
            "resolve_breaches": 1,
        }

    def test_metrics_take_a_constant_number_of_queries(self, admin_a, known_incidents):
        admin_a.client.get(url(action="metrics"))  # the token's first use stamps last_used_at
        with CaptureQueriesContext(connection) as few:
            admin_a.client.get(url(action="metrics"), WINDOW)
        for _ in range(5):
            make_incident(admin_a.user.membership.tenant, severity="SEV4", at=T0)
        with CaptureQueriesContext(connection) as many:
            admin_a.client.get(url(action="metrics"), WINDOW)
        assert len(many) == len(few)

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
            ({"from": "yesterday"}, "from"),
            ({"to": "2026-13-45"}, "to"),
            ({"since": "2026-01-01"}, "since"),
        ],
    )
    def test_bad_windows_name_the_field(self, admin_a, tenant_a, params, field):
        response = admin_a.client.get(url(action="metrics"), params)
        assert response.status_code == 400
        assert field in error_fields(response)

    def test_fleet_metrics_per_visible_tenant(
        self, msp_admin, engineer_a, admin_a, known_incidents, tenant_a
    ):
        everyone = msp_admin.client.get("/api/v1/incidents/metrics", WINDOW)
        assert everyone.status_code == 200, everyone.content
        rows = {row["tenant"]["slug"]: row for row in everyone.json()["results"]}
        assert set(rows) == {"acme", "borealis"}
        assert rows["acme"]["overall"]["incidents"] == 3
        assert rows["borealis"]["overall"]["mtta_seconds"] == 3600.0
        sev4 = {row["severity"]: row for row in rows["borealis"]["by_severity"]}["SEV4"]
        assert sev4["acknowledged"] == 1
        mine = engineer_a.client.get("/api/v1/incidents/metrics", WINDOW).json()["results"]
        assert [row["tenant"]["slug"] for row in mine] == ["acme"]
        assert mine[0]["overall"] == rows["acme"]["overall"]
        assert admin_a.client.get("/api/v1/incidents/metrics").status_code == 403
        bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_a))
        bound_rows = bound.client.get("/api/v1/incidents/metrics", WINDOW).json()["results"]
        assert [row["tenant"]["slug"] for row in bound_rows] == ["acme"]
        lonely = make_staff(role=MspRole.ENGINEER, username="unassigned")
        lonely_actor = Actor(lonely, make_token(lonely))
        assert lonely_actor.client.get("/api/v1/incidents/metrics").json()["results"] == []
        bad = msp_admin.client.get("/api/v1/incidents/metrics", {"from": "2030-01-01"})
        assert "from" in error_fields(bad)
