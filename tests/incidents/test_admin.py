"""Incidents in the MSP console: visibility, attention filters, bulk actions, the timeline and
comment inlines, edits through the services."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.urls import reverse

from operations.incidents import services
from operations.incidents.models import Incident, TimelineEntry
from tenants.models import MspRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_staff
from tests.incidents.factories import act, fresh, make_incident

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:incidents_incident_changelist"


def text(response) -> str:
    return html.unescape(response.content.decode())


def listed(response) -> set[str]:
    return {incident.reference for incident in response.context["cl"].result_list}


def run_action(client, action: str, incidents):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [i.pk for i in incidents], "index": 0},
        follow=True,
    )


@pytest.fixture
def engineer(tenant_a):
    return make_staff(tenant_a, role=MspRole.ENGINEER, username="engineer")


@pytest.fixture
def analyst(tenant_a):
    return make_staff(tenant_a, role=MspRole.ANALYST, username="analyst")


@pytest.fixture
def mixed(tenant_a, tenant_b):
    """Open, breached, serious and resolved incidents in A; one in B."""
    long_ago = dt.datetime(2026, 1, 14, 10, 0, tzinfo=dt.UTC)
    opened = make_incident(tenant_a, title="Open")
    breached = make_incident(tenant_a, severity="SEV1", title="Breached", at=long_ago)
    with tenant_scope(tenant_a.id):
        services.incident_sla_breaches_mark(tenant=tenant_a)
    serious = act(
        tenant_a, services.incident_update, make_incident(tenant_a, title="Serious"), serious=True
    )
    done = act(tenant_a, services.incident_resolve, make_incident(tenant_a, title="Done"))
    foreign = make_incident(tenant_b, title="Foreign")
    return {
        "open": opened,
        "breached": breached,
        "serious": serious,
        "done": done,
        "foreign": foreign,
    }


def test_engineers_see_their_tenants_incidents_only(client, engineer, mixed):
    login_verified(client, engineer)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert listed(response) == {"ACME-1", "ACME-2", "ACME-3", "ACME-4"}
    foreign = client.get(reverse("admin:incidents_incident_change", args=[mixed["foreign"].pk]))
    assert foreign.status_code == 302  # Django's "does not exist" redirect, same as missing


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("open", {"ACME-1", "ACME-2", "ACME-3"}),
        ("breaching", {"ACME-1", "ACME-3"}),  # SEV2: acknowledge within 30 minutes
        ("breached", {"ACME-2"}),
        ("serious", {"ACME-3"}),
    ],
)
def test_attention_filters(client, engineer, mixed, state, expected):
    login_verified(client, engineer)
    response = client.get(reverse(CHANGELIST), {"state": state})
    assert listed(response) == expected


def test_bulk_actions_go_through_the_services(client, engineer, mixed, tenant_a):
    login_verified(client, engineer)
    response = run_action(client, "acknowledge_selected", [mixed["open"], mixed["done"]])
    page = text(response)
    assert "Acknowledged 1 incident(s)." in page
    assert "ACME-4: Cannot acknowledge an incident that is resolved" in page
    assert fresh(mixed["open"]).status == "acknowledged"

    run_action(client, "assign_to_me", [mixed["open"], mixed["breached"]])
    assert fresh(mixed["open"]).assignee == engineer
    assert fresh(mixed["breached"]).assignee == engineer

    run_action(client, "resolve_selected", [mixed["open"]])
    assert fresh(mixed["open"]).status == "resolved"
    with tenant_scope(tenant_a.id):
        kinds = list(
            TimelineEntry.objects.filter(incident=mixed["open"]).values_list("kind", flat=True)
        )
    assert kinds == ["created", "status", "assignment", "status"]


def test_analysts_read_but_do_not_act(client, analyst, mixed):
    login_verified(client, analyst)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert "acknowledge_selected" not in text(response)
    run_action(client, "acknowledge_selected", [mixed["open"]])
    assert fresh(mixed["open"]).status == "triggered"


def test_the_change_page_shows_the_whole_timeline_and_adds_comments(
    client, engineer, mixed, tenant_a
):
    incident = mixed["breached"]
    act(tenant_a, services.incident_comment, incident, body="Vendor ticket 4711", internal=True)
    login_verified(client, engineer)
    change = reverse("admin:incidents_incident_change", args=[incident.pk])
    page = client.get(change)
    assert page.status_code == 200
    body = text(page)
    assert "Vendor ticket 4711" in body  # staff see internal entries here
    assert "acknowledge SLA was breached" in body
    form = page.context["adminform"].form
    data = {
        name: form[name].value() or ""
        for name in form.fields
        if name not in ("assignee", "serious", "aware_at", "regulator_notified_at")
    }
    data.update(
        {
            "severity": "SEV2",
            "assignee": engineer.pk,
            "new_comment-TOTAL_FORMS": "1",
            "new_comment-INITIAL_FORMS": "0",
            "new_comment-0-internal": "on",
            "new_comment-0-body": "Escalated to L3",
            "timeline-TOTAL_FORMS": "0",
            "timeline-INITIAL_FORMS": "0",
        }
    )
    response = client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    incident = fresh(incident)
    assert (incident.severity, incident.assignee) == ("SEV2", engineer)
    with tenant_scope(tenant_a.id):
        last = TimelineEntry.objects.filter(incident=incident).order_by("id").last()
    assert (last.kind, last.internal, last.body) == ("comment", True, "Escalated to L3")


def test_assigning_someone_outside_the_tenant_is_a_form_error(client, engineer, tenant_b, mixed):
    outsider = make_staff(tenant_b, role=MspRole.ENGINEER, username="outsider")
    login_verified(client, engineer)
    incident = mixed["open"]
    change = reverse("admin:incidents_incident_change", args=[incident.pk])
    form = client.get(change).context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields if name != "serious"}
    data.update(
        {
            "assignee": outsider.pk,
            "new_comment-TOTAL_FORMS": "1",
            "new_comment-INITIAL_FORMS": "0",
            "timeline-TOTAL_FORMS": "0",
            "timeline-INITIAL_FORMS": "0",
        }
    )
    response = client.post(change, data)
    assert response.status_code == 200
    assert "assignee" in response.context["adminform"].form.errors
    assert fresh(incident).assignee is None


def test_adding_an_incident_in_the_console(client, engineer, tenant_a):
    login_verified(client, engineer)
    response = client.post(
        reverse("admin:incidents_incident_add"),
        {
            "tenant": tenant_a.pk,
            "title": "Storage array degraded",
            "description": "",
            "severity": "SEV2",
            "category": "outage",
            "dedupe_key": "",
        },
    )
    assert response.status_code == 302
    with tenant_scope(tenant_a.id):
        incident = Incident.objects.get()
    assert (incident.reference, incident.source, incident.reporter) == (
        "ACME-1",
        "admin",
        engineer,
    )


def test_the_changelist_costs_the_same_queries_whatever_its_length(client, engineer, tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    login_verified(client, engineer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(CHANGELIST)).status_code == 200
        return len(captured)

    for _ in range(2):
        act(tenant_a, services.incident_assign, make_incident(tenant_a), assignee=engineer)
    few = queries()
    for _ in range(8):
        act(tenant_a, services.incident_assign, make_incident(tenant_a), assignee=engineer)
    assert queries() == few


# --- Alert rules ---------------------------------------------------------------------------------


def _rule_form(**fields) -> dict:
    values = {
        "name": "GPU saturated",
        "description": "",
        "enabled": "on",
        "target": "compute",
        "metric": "gpu_utilization",
        "condition": "above",
        "threshold": "90",
        "window_minutes": "15",
        "resource_pattern": "",
        "site_code": "",
        "gpu_model": "",
        "environment": "",
        "severity": "SEV3",
        "category": "performance",
        "auto_resolve": "on",
    }
    return {**values, **fields}


def test_an_msp_admin_writes_defaults_and_an_engineer_only_reads_them(client, engineer):
    from operations.incidents.models import AlertRuleDefault
    from tenants.models import AuditEvent

    admin_user = make_staff(role=MspRole.ADMIN, username="boss")
    login_verified(client, admin_user)
    add = reverse("admin:incidents_alertruledefault_add")
    response = client.post(add, _rule_form())
    assert response.status_code == 302, text(response)
    default = AlertRuleDefault.objects.get()
    assert AuditEvent.objects.filter(tenant=None, action="create").exists()

    refused = client.post(add, _rule_form(name="Bad", threshold="150"))
    assert refused.status_code == 200
    assert "a threshold outside it would never change state" in text(refused)
    assert AlertRuleDefault.objects.count() == 1

    login_verified(client, engineer)
    assert client.get(reverse("admin:incidents_alertruledefault_changelist")).status_code == 200
    assert client.post(add, _rule_form(name="Mine")).status_code == 403
    change = reverse("admin:incidents_alertruledefault_change", args=[default.pk])
    client.post(change, _rule_form(threshold="50"))
    default.refresh_from_db()
    assert default.threshold == 90.0


def test_an_engineer_adds_a_rule_to_an_assigned_tenant_only(client, engineer, tenant_a, tenant_b):
    from operations.incidents.models import AlertRule
    from tests.incidents.alerting import make_rule

    make_rule(tenant_b, name="Borealis rule")
    login_verified(client, engineer)
    listed_names = {
        rule.name
        for rule in client.get(reverse("admin:incidents_alertrule_changelist"))
        .context["cl"]
        .result_list
    }
    assert listed_names == set()

    add = reverse("admin:incidents_alertrule_add")
    response = client.post(add, _rule_form(tenant=tenant_a.pk, resource_pattern="*-hot-*"))
    assert response.status_code == 302, text(response)
    with tenant_scope(tenant_a.id):
        rule = AlertRule.objects.get()
    assert (rule.name, rule.resource_pattern) == ("GPU saturated", "*-hot-*")

    foreign = client.post(add, _rule_form(tenant=tenant_b.pk, name="Sneaky"))
    assert foreign.status_code == 200  # tenant B is not a choice for this engineer
    with tenant_scope(tenant_b.id):
        assert list(AlertRule.objects.values_list("name", flat=True)) == ["Borealis rule"]

    change = reverse("admin:incidents_alertrule_change", args=[rule.pk])
    response = client.post(change, _rule_form(threshold="95", resource_pattern="*-hot-*"))
    assert response.status_code == 302, text(response)
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.get().threshold == 95.0


def test_the_evaluate_now_action_reports_per_tenant(client, engineer, tenant_a):
    from django.utils import timezone

    from operations.incidents.models import AlertRule
    from tests.incidents.alerting import alert_incidents, feed, make_rule
    from tests.inventory.estate import make_gpu_node

    make_gpu_node(tenant_a, hostname="acme-gpu-hot-01")
    start = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
    feed(tenant_a, "compute:acme-gpu-hot-01", "gpu_utilization", [97.0] * 7, start=start)
    rule = make_rule(tenant_a)
    login_verified(client, engineer)
    response = client.post(
        reverse("admin:incidents_alertrule_changelist"),
        {"action": "evaluate_now", "_selected_action": [rule.pk], "index": 0},
        follow=True,
    )
    assert "Acme Analytics: 1 opened." in text(response)
    assert len(alert_incidents(tenant_a)) == 1

    analyst = make_staff(tenant_a, role=MspRole.ANALYST, username="reader")
    login_verified(client, analyst)
    with tenant_scope(tenant_a.id):
        assert AlertRule.objects.count() == 1
    response = client.post(
        reverse("admin:incidents_alertrule_changelist"),
        {"action": "evaluate_now", "_selected_action": [rule.pk], "index": 0},
    )
    assert response.status_code == 200
    assert "evaluate_now" not in text(response)  # not offered to a read-only role
    assert "firing" not in text(response)


def _workflow(response) -> list[str]:
    return re.findall(r'data-action="([a-z-]+)"', response.content.decode())


def test_workflow_buttons_on_the_incident_page_move_it_through_the_services(
    client, engineer, tenant_a
):
    incident = make_incident(tenant_a, title="Latency")
    login_verified(client, engineer)
    change = reverse("admin:incidents_incident_change", args=[incident.pk])
    assert _workflow(client.get(change)) == ["acknowledge", "resolve"]

    def press(action, **data):
        url = reverse("admin:incidents_incident_act", args=[incident.pk, action])
        return client.post(url, data, follow=True)

    assert "Acknowledge: 1 incident(s)." in text(press("acknowledge"))
    assert fresh(incident).status == "acknowledged"
    assert "wait-on-client" in _workflow(client.get(change))
    press("resolve", note="Rolled back the model.", note_visibility="client")
    assert fresh(incident).status == "resolved"
    with tenant_scope(tenant_a.id):
        entry = TimelineEntry.objects.get(body__contains="Rolled back the model.")
    assert (entry.internal, entry.author) == (False, engineer)
    assert "cannot acknowledge now" in text(press("acknowledge"))
    assert (
        client.get(reverse("admin:incidents_incident_act", args=[incident.pk, "close"])).status_code
        == 405
    )


def test_analysts_and_other_teams_get_no_workflow_buttons(client, analyst, tenant_b, tenant_a):
    incident = make_incident(tenant_a)
    login_verified(client, analyst)
    assert (
        _workflow(client.get(reverse("admin:incidents_incident_change", args=[incident.pk]))) == []
    )
    url = reverse("admin:incidents_incident_act", args=[incident.pk, "acknowledge"])
    assert client.post(url).status_code == 403
    other = make_staff(tenant_b, role=MspRole.ENGINEER, username="eng-b")
    login_verified(client, other)
    client.post(url)
    assert fresh(incident).status == "triggered"
