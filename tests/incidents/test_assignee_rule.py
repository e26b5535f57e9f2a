"""Who may own an incident, written once (``services.incident_assignee_check``): the services,
the API and the MSP console refuse the same people. The portal has no assignment door."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from operations.incidents import services
from tenants.models import MspRole, TenantRole
from tests.factories import login_verified, make_member, make_staff
from tests.incidents.factories import act, fresh, make_incident

pytestmark = pytest.mark.django_db

REFUSED = {"assignee": [services.ASSIGNEE_REFUSED]}


@pytest.fixture
def candidates(tenant_a, tenant_b):
    """Who may and may not own an incident of tenant A."""
    return {
        "engineer of A": (make_staff(tenant_a, username="eng-of-a"), True),
        "MSP admin": (make_staff(role=MspRole.ADMIN, username="boss"), True),
        "engineer of B only": (make_staff(tenant_b, username="eng-of-b"), False),
        "inactive engineer of A": (
            make_staff(tenant_a, username="gone", is_active=False),
            False,
        ),
        "analyst of A": (make_staff(tenant_a, role=MspRole.ANALYST, username="reader"), False),
        "client admin of A": (make_member(tenant_a, TenantRole.ADMIN, username="client"), False),
    }


def test_the_rule_takes_a_user_or_an_id(tenant_a, candidates):
    for name, (user, allowed) in candidates.items():
        for given in (user, user.pk):
            if allowed:
                assert services.incident_assignee_check(tenant=tenant_a, assignee=given) == user
            else:
                with pytest.raises(ValidationError) as error:
                    services.incident_assignee_check(tenant=tenant_a, assignee=given)
                assert error.value.message_dict == REFUSED, name
    assert services.incident_assignee_check(tenant=tenant_a, assignee=None) is None
    with pytest.raises(ValidationError):
        services.incident_assignee_check(tenant=tenant_a, assignee=987654)


def test_the_service_and_the_api_refuse_the_same_people(tenant_a, engineer_a, candidates):
    incident = make_incident(tenant_a)
    for name, (user, allowed) in candidates.items():
        api = engineer_a.client.post(
            f"/api/v1/tenants/acme/incidents/{incident.pk}/assign/", {"assignee": user.pk}
        )
        if allowed:
            assert api.status_code == 200, (name, api.content)
            assert fresh(incident).assignee == user
            assert act(tenant_a, services.incident_assign, incident, assignee=user).assignee == user
            continue
        assert api.status_code == 400, name
        assert api.json()["error"]["fields"] == REFUSED, name
        with pytest.raises(ValidationError) as error:
            act(tenant_a, services.incident_assign, incident, assignee=user)
        assert error.value.message_dict == REFUSED, name
        assert fresh(incident).assignee != user


def test_the_console_refuses_them_too(client, tenant_a, candidates):
    editor = make_staff(tenant_a, username="editor")
    login_verified(client, editor)
    incident = make_incident(tenant_a)
    change = reverse("admin:incidents_incident_change", args=[incident.pk])
    form = client.get(change).context["adminform"].form
    unset = ("assignee", "serious", "aware_at", "regulator_notified_at")
    base = {name: form[name].value() or "" for name in form.fields if name not in unset}
    base.update(
        {
            "new_comment-TOTAL_FORMS": "1",
            "new_comment-INITIAL_FORMS": "0",
            "new_comment-0-internal": "on",  # as shown: the empty comment form is unchanged
            "timeline-TOTAL_FORMS": "0",
            "timeline-INITIAL_FORMS": "0",
        }
    )
    for name, (user, allowed) in candidates.items():
        response = client.post(change, {**base, "assignee": user.pk})
        if allowed:
            assert response.status_code == 302, (name, response.context["adminform"].form.errors)
            assert fresh(incident).assignee == user
            continue
        assert response.status_code == 200, name
        errors = response.context["adminform"].form.errors
        assert "assignee" in errors, name
        assert fresh(incident).assignee != user
    # Someone the console lists but the rule refuses gets the rule's own words.
    outsider = candidates["engineer of B only"][0]
    response = client.post(change, {**base, "assignee": outsider.pk})
    assert response.context["adminform"].form.errors["assignee"] == REFUSED["assignee"]
