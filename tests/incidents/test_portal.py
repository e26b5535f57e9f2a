"""Incident pages of the client portal: the client's view of the timeline, raising, commenting,
confirming or disputing a fix, the CSV export, and the same 404 for foreign and missing."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from operations.incidents import services
from operations.incidents.models import Incident, TimelineEntry
from operations.incidents.portal import urls as incident_portal_urls
from tenants.models import TenantRole
from tenants.scoping import tenant_scope
from tests.factories import login_verified, make_member
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


def test_the_detail_page_shows_only_client_visible_entries(client, admin_a, engineer_a, story):
    # Staff see the client's view here too, read-only (no confirm buttons, no comment form).
    for user, can_edit in ((admin_a.user, True), (engineer_a.user, False)):
        login_verified(client, user)
        response = client.get(page("detail", story.tenant, number=story.number))
        assert response.status_code == 200
        body = text(response)
        assert "Working on it." in body
        assert SECRET not in body
        assert ("Is it fixed for you?" in body) is can_edit
        assert ("Add comment" in body) is can_edit


def test_the_csv_export_leaves_internal_entries_out(client_admin, story):
    response = client_admin.get(page("timeline-csv", story.tenant, number=story.number))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(text(response))))
    assert SECRET not in text(response)
    assert [row[5] for row in rows[1:]][1] == "Working on it."
    assert {row[3] for row in rows[1:]} == {"client-visible"}


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


def test_viewers_and_staff_cannot_raise_or_comment(client, tenant_a, engineer_a, story):
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
