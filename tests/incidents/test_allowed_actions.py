"""What a caller may do to an incident, decided once (``selectors.incident_allowed_actions``):
the API lists it, the portal shows its forms from it, the console its comment form; and the
doors agree that a closed incident takes no more comments."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from operations.incidents import services
from operations.incidents.selectors import incident_allowed_actions
from tenants.models import MspRole, TenantRole, TenantStatus
from tenants.scoping import tenant_scope
from tenants.selectors import TenantAccess
from tests.factories import login_verified, make_member, make_staff
from tests.incidents.factories import act, fresh, make_incident

pytestmark = pytest.mark.django_db


def incident_in(tenant, state: str):
    """An incident of ``tenant`` brought to ``state`` through the services."""
    incident = make_incident(tenant)
    moves = {
        "triggered": [],
        "acknowledged": ["acknowledge"],
        "waiting": ["acknowledge", "wait"],
        "investigating": ["acknowledge", "investigate"],
        "mitigated": ["acknowledge", "mitigate"],
        "resolved": ["resolve"],
        "closed": ["resolve", "close"],
    }[state]
    for move in moves:
        if move == "wait":
            incident = act(tenant, services.incident_wait_on_client, incident)
        else:
            incident = act(tenant, services.incident_transition, incident, action=move)
    return incident


STAFF = {
    "triggered": ["acknowledge", "resolve", "comment"],
    "acknowledged": ["investigate", "mitigate", "resolve", "comment", "wait-on-client"],
    "waiting": ["investigate", "mitigate", "resolve", "comment", "resume"],
    "investigating": ["mitigate", "resolve", "comment", "wait-on-client"],
    "mitigated": ["investigate", "resolve", "comment", "wait-on-client"],
    "resolved": ["close", "reopen", "comment"],
    "closed": [],
}
CLIENT = {
    "triggered": ["comment"],
    "acknowledged": ["comment"],
    "waiting": ["comment"],
    "investigating": ["comment"],
    "mitigated": ["comment"],
    "resolved": ["close", "reopen", "comment"],
    "closed": [],
}


@pytest.mark.parametrize("state", list(STAFF))
def test_the_actions_by_status_and_role(tenant_a, state):
    incident = incident_in(tenant_a, state)
    expected = {
        MspRole.ADMIN: STAFF[state],
        MspRole.ENGINEER: STAFF[state],
        MspRole.ANALYST: [],
        TenantRole.ADMIN: CLIENT[state],
        TenantRole.MEMBER: CLIENT[state],
        TenantRole.VIEWER: [],
    }
    for role, actions in expected.items():
        access = TenantAccess(tenant=tenant_a, role=role)
        assert incident_allowed_actions(incident, access) == actions, role


def test_clients_of_a_suspended_tenant_may_do_nothing_staff_still_may(tenant_a):
    incident = incident_in(tenant_a, "resolved")
    tenant_a.status = TenantStatus.SUSPENDED
    member = TenantAccess(tenant=tenant_a, role=TenantRole.ADMIN)
    engineer = TenantAccess(tenant=tenant_a, role=MspRole.ENGINEER)
    assert incident_allowed_actions(incident, member) == []
    assert incident_allowed_actions(incident, engineer) == STAFF["resolved"]


# --- The doors ---------------------------------------------------------------------------------


def test_the_api_lists_the_callers_own_actions(tenant_a, engineer_a, member_a, analyst_a):
    incident = incident_in(tenant_a, "acknowledged")
    detail = f"/api/v1/tenants/acme/incidents/{incident.pk}/"
    for actor, expected in (
        (engineer_a, STAFF["acknowledged"]),
        (member_a, CLIENT["acknowledged"]),
        (analyst_a, []),
    ):
        assert actor.client.get(detail).json()["allowed_actions"] == expected
        listed = actor.client.get("/api/v1/tenants/acme/incidents/").json()["results"]
        assert listed[0]["allowed_actions"] == expected
    # What the list leaves out, the API refuses: a client does not acknowledge or wait.
    assert member_a.client.post(f"{detail}mitigate/").status_code == 403
    assert member_a.client.post(f"{detail}wait-on-client/").status_code == 403
    assert member_a.client.post(f"{detail}comment/", {"body": "Any news?"}).status_code == 201


def test_a_closed_incident_takes_no_comment_through_any_door(client, tenant_a, engineer_a, admin_a):
    incident = incident_in(tenant_a, "closed")
    before = _comments(incident)

    # The service.
    with pytest.raises(ValidationError) as error:
        act(tenant_a, services.incident_comment, incident, body="Late note", internal=True)
    assert "status" in error.value.message_dict

    # The API, for staff and clients.
    comment = f"/api/v1/tenants/acme/incidents/{incident.pk}/comment/"
    for actor in (engineer_a, admin_a):
        response = actor.client.post(comment, {"body": "Late note"})
        assert response.status_code == 400
        assert "status" in response.json()["error"]["fields"]

    # The portal: no comment form, and a posted comment is refused.
    client.force_login(admin_a.user)
    detail = reverse("portal_incidents:detail", kwargs={"slug": "acme", "number": incident.number})
    assert "Add comment" not in client.get(detail).content.decode()
    refused = client.post(detail, {"body": "Late note"})
    assert refused.status_code == 200
    assert refused.context["form"].errors

    # The console: no comment form on a closed incident (there is one on an open incident).
    login_verified(client, make_staff(tenant_a, username="console-engineer"))
    change = reverse("admin:incidents_incident_change", args=[incident.pk])
    assert "new_comment-TOTAL_FORMS" not in client.get(change).content.decode()
    still_open = make_incident(tenant_a)
    change_open = reverse("admin:incidents_incident_change", args=[still_open.pk])
    assert "new_comment-TOTAL_FORMS" in client.get(change_open).content.decode()

    assert _comments(incident) == before


def test_the_portal_shows_a_client_the_forms_of_their_actions(client, tenant_a, admin_a):
    client.force_login(admin_a.user)
    viewer = make_member(tenant_a, TenantRole.VIEWER, username="watcher")
    resolved = incident_in(tenant_a, "resolved")
    triggered = incident_in(tenant_a, "triggered")

    def detail(incident) -> str:
        url = reverse("portal_incidents:detail", kwargs={"slug": "acme", "number": incident.number})
        return client.get(url).content.decode()

    forms = ("Yes, close it", "No, reopen it", "Add comment")
    assert [words in detail(resolved) for words in forms] == [True, True, True]
    assert [words in detail(triggered) for words in forms] == [False, False, True]
    client.force_login(viewer)
    assert [words in detail(resolved) for words in forms] == [False, False, False]
    assert fresh(resolved).status == "resolved"


def _comments(incident) -> int:
    with tenant_scope(incident.tenant_id):
        return incident.timeline.filter(kind="comment").count()
