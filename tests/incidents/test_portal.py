"""Incident pages of the client portal: the client's view of the timeline, raising, commenting,
confirming or disputing a fix, the CSV export, and the same 404 for foreign and missing."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from operations.incidents import services
from operations.incidents.models import Incident, TimelineEntry
from operations.incidents.portal import urls as incident_portal_urls
from tenants.models import AuditEvent, MspRole, TenantRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_member, make_staff
from tests.incidents.factories import act, fresh, make_incident

pytestmark = pytest.mark.django_db

SECRET = "internal: blame the client's proxy"


def page(name: str, tenant, **kwargs) -> str:
    return reverse(f"portal_incidents:{name}", kwargs={"slug": tenant.slug, **kwargs})


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def client_admin(client, admin_a):
    client.force_login(admin_a.user)
    return client


@pytest.fixture
def story(tenant_a, engineer_a):
    """A resolved incident with internal and client-visible entries."""
    incident = make_incident(tenant_a, title="Scoring endpoint slow", severity="SEV2")
    act(tenant_a, services.incident_comment, incident, body=SECRET, internal=True)
    act(tenant_a, services.incident_comment, incident, body="Working on it.", internal=False)
    act(tenant_a, services.incident_acknowledge, incident, note=SECRET, note_internal=True)
    return act(tenant_a, services.incident_resolve, incident)


def test_every_incident_page_goes_through_the_portal_gate():
    for pattern in incident_portal_urls.urlpatterns:
        assert getattr(pattern.callback, "portal_tenant_view", False), pattern.name


def test_the_list_shows_the_tenants_incidents_by_state(client_admin, tenant_a, tenant_b, story):
    make_incident(tenant_a, title="Still open")
    make_incident(tenant_b, title="Borealis trouble")
    open_page = text(client_admin.get(page("list", tenant_a)))
    assert "Still open" in open_page
    assert "Scoring endpoint slow" not in open_page
    assert "Borealis trouble" not in open_page
    all_page = text(client_admin.get(page("list", tenant_a) + "?state=all"))
    assert "Scoring endpoint slow" in all_page
    assert "Raise an incident" in all_page


def test_clients_see_only_client_visible_entries_and_engineers_see_notes_marked(
    client, admin_a, engineer_a, story
):
    login_verified(client, admin_a.user)
    body = text(client.get(page("detail", story.tenant, number=story.number)))
    assert "Working on it." in body
    assert SECRET not in body
    assert "Is it fixed for you?" in body
    assert "Add comment" in body
    assert "Work on this incident" not in body

    login_verified(client, engineer_a.user)
    body = html.unescape(text(client.get(page("detail", story.tenant, number=story.number))))
    assert "Working on it." in body
    assert SECRET in body
    assert "Internal — the client does not see this" in body
    assert "Is it fixed for you?" not in body  # the client's confirmation is the client's
    assert "Work on this incident" in body


def test_the_csv_export_leaves_internal_entries_out(client_admin, story):
    response = client_admin.get(page("timeline-csv", story.tenant, number=story.number))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(text(response))))
    assert SECRET not in text(response)
    assert [row[5] for row in rows[1:]][1] == "Working on it."
    assert {row[3] for row in rows[1:]} == {"client-visible"}


def test_the_list_downloads_as_csv_with_its_state(client_admin, tenant_a, tenant_b, story):
    open_one = make_incident(tenant_a, title="=Still open")
    foreign = make_incident(tenant_b, title="Borealis trouble")
    listing = text(client_admin.get(page("list", tenant_a), {"state": "resolved"}))
    link = page("list-csv", tenant_a) + "?state=resolved"
    assert f'href="{html.escape(link)}"' in listing

    response = client_admin.get(link)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert [row[0] for row in rows[1:]] == [story.reference]
    every = client_admin.get(page("list-csv", tenant_a), {"state": "all"}).getvalue().decode()
    assert story.reference in every
    assert "'=Still open" in every
    assert open_one.reference in every
    assert foreign.title not in every
    foreign_csv = client_admin.get(page("list-csv", tenant_b), {"state": "all"})
    assert foreign_csv.status_code == 404


def test_foreign_and_missing_incidents_are_the_same_404(client_admin, tenant_b, tenant_a):
    foreign = make_incident(tenant_b)
    foreign_page = client_admin.get(page("detail", tenant_b, number=foreign.number))
    missing = client_admin.get(page("detail", tenant_a, number=99))
    assert foreign_page.status_code == missing.status_code == 404
    scrub = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub("", text(foreign_page)) == scrub.sub("", text(missing))
    assert "Borealis" not in text(foreign_page)
    csv_page = client_admin.get(page("timeline-csv", tenant_b, number=foreign.number))
    assert csv_page.status_code == 404


def test_a_member_raises_an_incident(client, member_a, tenant_a):
    client.force_login(member_a.user)
    assert client.get(page("raise", tenant_a)).status_code == 200
    response = client.post(
        page("raise", tenant_a),
        {
            "title": "Answers in the wrong language",
            "description": "Since 08:00",
            "severity": "SEV3",
            "category": "model_quality",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page("detail", tenant_a, number=1)
    assert "Raised ACME-1" in text(response)
    with tenant_scope(tenant_a.id):
        incident = Incident.objects.get()
    assert (incident.source, incident.reporter, incident.severity) == (
        "portal",
        member_a.user,
        "SEV3",
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"title": "", "severity": "SEV3", "category": "outage"}, "title"),
        ({"title": "x", "severity": "SEV9", "category": "outage"}, "severity"),
        ({"title": "x", "severity": "SEV3", "category": "weather"}, "category"),
        (
            {"title": "x", "severity": "SEV3", "category": "outage", "ai_systems": ["987"]},
            "ai_systems",
        ),
    ],
)
def test_bad_raise_input_shows_errors_and_writes_nothing(client_admin, tenant_a, data, field):
    response = client_admin.post(page("raise", tenant_a), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert "Nothing was saved." in text(response)
    with tenant_scope(tenant_a.id):
        assert not Incident.objects.exists()


def test_viewers_and_staff_cannot_raise_or_comment_as_the_client(
    client, tenant_a, engineer_a, story
):
    viewer = make_member(tenant_a, TenantRole.VIEWER, username="watcher")
    for user in (viewer, engineer_a.user):
        login_verified(client, user)
        assert client.get(page("raise", tenant_a)).status_code == 403
        response = client.post(page("detail", tenant_a, number=story.number), {"body": "hi"})
        assert response.status_code == 403
        assert client.post(page("close", tenant_a, number=story.number)).status_code == 403
    with tenant_scope(tenant_a.id):
        assert not TimelineEntry.objects.filter(body="hi").exists()
    assert fresh(story).status == "resolved"


def test_a_client_comments_client_visibly(client_admin, tenant_a, story):
    response = client_admin.post(
        page("detail", tenant_a, number=story.number), {"body": "Thanks, all good now."}
    )
    assert response.status_code == 302
    with tenant_scope(tenant_a.id):
        entry = TimelineEntry.objects.filter(kind="comment").order_by("id").last()
    assert (entry.body, entry.internal, entry.author_label) == (
        "Thanks, all good now.",
        False,
        "acme-admin",
    )
    empty = client_admin.post(page("detail", tenant_a, number=story.number), {"body": ""})
    assert "body" in empty.context["form"].errors


def test_a_client_disputes_then_confirms_the_fix(client_admin, tenant_a, story):
    response = client_admin.post(
        page("reopen", tenant_a, number=story.number), {"note": "Still slow at peak"}, follow=True
    )
    assert "Reopened ACME-1" in text(response)
    assert fresh(story).status == "investigating"
    refused = client_admin.post(page("close", tenant_a, number=story.number), follow=True)
    assert "Cannot close an incident that is investigating" in text(refused)
    act(tenant_a, services.incident_resolve, story)
    client_admin.post(page("close", tenant_a, number=story.number))
    assert fresh(story).status == "closed"
    assert client_admin.get(page("close", tenant_a, number=story.number)).status_code == 405


def test_the_list_costs_the_same_queries_whatever_its_length(client_admin, tenant_a):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_admin.get(page("list", tenant_a) + "?state=all").status_code == 200
        return len(captured)

    for _ in range(2):
        make_incident(tenant_a)
    few = queries()
    for _ in range(10):
        incident = make_incident(tenant_a)
        act(tenant_a, services.incident_comment, incident, body="x", internal=False)
    assert queries() == few


# --- Alert rules -----------------------------------------------------------------------------


def test_the_alert_rules_page_shows_the_rules_in_force_read_only(
    client, viewer_a, tenant_a, tenant_b
):
    from tests.incidents.alerting import make_default, make_rule

    saturated = make_default(name="GPU saturated")
    make_default(
        name="Latency", target="deployment", metric="inference_latency_p95_ms", threshold=500
    )
    make_rule(
        tenant_a, name="Idle GPU node", condition="below", threshold=5, resource_pattern="*-gpu-*"
    )
    make_rule(tenant_a, name="Saturation off", default_rule=saturated, enabled=False)
    make_rule(tenant_b, name="Borealis only")
    client.force_login(viewer_a.user)

    listing = text(client.get(page("list", tenant_a)))
    assert page("alert-rules", tenant_a) in listing
    response = client.get(page("alert-rules", tenant_a))
    assert response.status_code == 200
    body = text(response)
    assert "Idle GPU node" in body
    assert "*-gpu-*" in body
    assert "Latency" in body
    assert "Your MSP's defaults" in body
    assert "GPU saturated" not in body  # switched off for this tenant
    assert "Saturation off" not in body
    assert "Borealis only" not in body
    assert client.post(page("alert-rules", tenant_a)).status_code in (403, 405)


def test_the_alert_rules_page_of_another_tenant_is_the_same_404(client_admin, tenant_b):
    foreign = client_admin.get(page("alert-rules", tenant_b))
    missing = client_admin.get(reverse("portal_incidents:alert-rules", kwargs={"slug": "nope"}))
    assert foreign.status_code == missing.status_code == 404
    scrub = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert scrub.sub("", text(foreign)) == scrub.sub("", text(missing))


def test_the_alert_rules_page_costs_the_same_queries_whatever_its_length(client_admin, tenant_a):
    from tests.incidents.alerting import make_default, make_rule

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_admin.get(page("alert-rules", tenant_a)).status_code == 200
        return len(captured)

    make_rule(tenant_a)
    few = queries()
    for number in range(10):
        make_rule(tenant_a, name=f"Rule {number}")
        make_default(name=f"Default {number}")
    assert queries() == few


# --- The engineer's workflow ------------------------------------------------------------------


@pytest.fixture
def engineer(client, engineer_a):
    login_verified(client, engineer_a.user)
    return engineer_a.user


def _buttons(response) -> list[str]:
    return re.findall(r'data-action="([a-z-]+)"', text(response))


def test_an_engineer_works_an_incident_from_its_page(client, engineer, tenant_a):
    incident = make_incident(tenant_a, title="GPU node down", severity="SEV2")
    detail = page("detail", tenant_a, number=incident.number)
    assert _buttons(client.get(detail)) == ["acknowledge", "resolve"]

    client.post(page("staff-act", tenant_a, number=incident.number, action="acknowledge"))
    assert fresh(incident).status == "acknowledged"
    assert _buttons(client.get(detail)) == [
        "investigate",
        "mitigate",
        "wait-on-client",
        "resolve",
    ]
    client.post(page("staff-act", tenant_a, number=incident.number, action="investigate"))
    client.post(
        page("staff-act", tenant_a, number=incident.number, action="wait-on-client"),
        {"note": "Can you restart the exporter?", "note_visibility": "client"},
    )
    assert fresh(incident).waiting_since is not None
    client.post(page("staff-act", tenant_a, number=incident.number, action="resume"))
    client.post(page("staff-act", tenant_a, number=incident.number, action="mitigate"))
    response = client.post(
        page("staff-act", tenant_a, number=incident.number, action="resolve"),
        {"note": "Replaced the PSU.", "note_visibility": "client"},
        follow=True,
    )
    assert "ACME-1: Resolve — done." in text(response)
    resolved = fresh(incident)
    assert (resolved.status, resolved.waiting_since) == ("resolved", None)
    with tenant_scope(tenant_a.id):
        fix = TimelineEntry.objects.get(body__contains="Replaced the PSU.")
        assert (fix.internal, fix.author) == (False, engineer)
    assert AuditEvent.objects.filter(
        object_type="incidents.Incident", actor_user=engineer, source="portal"
    ).exists()
    # Acknowledge is no longer offered, and pressing it anyway changes nothing.
    late = client.post(
        page("staff-act", tenant_a, number=incident.number, action="acknowledge"), follow=True
    )
    assert "cannot acknowledge now" in text(late)
    assert fresh(incident).status == "resolved"


def test_replies_reach_the_client_and_internal_notes_do_not(client, engineer, admin_a, tenant_a):
    incident = make_incident(tenant_a)
    note = page("staff-note", tenant_a, number=incident.number)
    client.post(note, {"body": "We are on it.", "visibility": "client"})
    client.post(note, {"body": "Suspect the driver upgrade.", "visibility": "internal"})
    refused = client.post(note, {"body": "", "visibility": "client"}, follow=True)
    assert "Write a reply or a note" in text(refused)

    login_verified(client, admin_a.user)
    body = text(client.get(page("detail", tenant_a, number=incident.number)))
    assert "We are on it." in body
    assert "Suspect the driver upgrade." not in body


def test_assignment_and_severity_with_a_reason(client, engineer, tenant_a):
    incident = make_incident(tenant_a, severity="SEV3")
    client.post(page("staff-assign", tenant_a, number=incident.number), {"assignee": "me"})
    assert fresh(incident).assignee == engineer
    outsider = make_staff(role=MspRole.ENGINEER, username="not-on-the-team")
    refused = client.post(
        page("staff-assign", tenant_a, number=incident.number),
        {"assignee": str(outsider.pk)},
        follow=True,
    )
    assert fresh(incident).assignee == engineer
    assert "account team" in text(refused) or "assign" in text(refused).lower()

    no_reason = client.post(
        page("staff-severity", tenant_a, number=incident.number), {"severity": "SEV1"}, follow=True
    )
    assert "say why" in text(no_reason)
    assert fresh(incident).severity == "SEV3"
    client.post(
        page("staff-severity", tenant_a, number=incident.number),
        {"severity": "SEV1", "reason": "Checkout is down for every customer."},
    )
    assert fresh(incident).severity == "SEV1"
    with tenant_scope(tenant_a.id):
        reason = TimelineEntry.objects.get(body="Checkout is down for every customer.")
    assert reason.internal is False


def test_clients_analysts_and_other_teams_cannot_use_the_workflow(
    client, tenant_a, tenant_b, admin_a
):
    incident = make_incident(tenant_a)
    analyst = make_staff(tenant_a, role=MspRole.ANALYST, username="analyst-a")
    other_team = make_staff(tenant_b, role=MspRole.ENGINEER, username="eng-b")
    act_url = page("staff-act", tenant_a, number=incident.number, action="acknowledge")
    for user, status in ((admin_a.user, 403), (analyst, 403), (other_team, 404)):
        login_verified(client, user)
        assert client.post(act_url).status_code == status, user
        assert (
            client.post(
                page("staff-note", tenant_a, number=incident.number),
                {"body": "x", "visibility": "internal"},
            ).status_code
            == status
        )
    login_verified(client, analyst)
    assert "Work on this incident" not in text(
        client.get(page("detail", tenant_a, number=incident.number))
    )
    assert fresh(incident).status == "triggered"


def test_another_tenants_incident_is_the_same_404_for_the_workflow(client, engineer, tenant_b):
    foreign = make_incident(tenant_b)
    response = client.post(page("staff-act", tenant_b, number=foreign.number, action="resolve"))
    assert response.status_code == 404
    assert fresh(foreign).status == "triggered"
