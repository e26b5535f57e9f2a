"""The admin at /admin/: who sees which tenant, read-only analysts, writes through services and
into the audit log, the lifecycle, tokens and the append-only audit log."""

from __future__ import annotations

import html

import pytest
from django.contrib import admin as django_admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants import services
from tenants.admin.base import StaffScopedAdmin, VisibleTenantListFilter
from tenants.models import (
    ONBOARDING_STEPS,
    ApiToken,
    AuditAction,
    AuditEvent,
    Membership,
    MspRole,
    OnboardingStep,
    ServicePlan,
    StaffAssignment,
    Tenant,
    TenantRole,
    TenantStatus,
    User,
)
from tenants.scoping import tenant_scope
from tests.factories import TenantFactory, login_verified, make_member, make_staff

REQUIRED_STEPS = sum(1 for _key, _title, required in ONBOARDING_STEPS if required)


# --- helpers ------------------------------------------------------------------------------------


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def run_action(client, model: str, action: str, objects):
    return client.post(
        url(f"tenants_{model}_changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objects], "index": 0},
        follow=True,
    )


def form_data(response) -> dict:
    """The POST a browser would send for an admin change page as rendered (forms and inlines)."""
    data: dict = {}

    def put(name, value):
        if value is None or value is False:
            return
        if value is True:
            data[name] = "on"
        elif isinstance(value, (list, tuple)):
            data[name] = [str(item) for item in value]
        else:
            data[name] = str(value)

    def add(form):
        for bound in form:
            put(bound.html_name, bound.value())
            if bound.field.show_hidden_initial:
                # Fields with a callable default also render their initial value, hidden.
                put(bound.html_initial_name, bound.value())

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def inline_prefix(response, model) -> str:
    for inline in response.context["inline_admin_formsets"]:
        if inline.formset.model is model:
            return inline.formset.prefix
    raise AssertionError(f"no inline for {model.__name__}")


def events(**filters):
    return AuditEvent.objects.filter(**filters).order_by("id")


def steps_of(tenant) -> list[OnboardingStep]:
    with tenant_scope(tenant.id):
        return list(OnboardingStep.objects.order_by("position"))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def admin_user(db):
    return make_staff(role=MspRole.ADMIN, username="boss")


@pytest.fixture
def engineer(tenant_a):
    return make_staff(tenant_a, role=MspRole.ENGINEER, username="engineer")


@pytest.fixture
def analyst(tenant_a):
    return make_staff(tenant_a, role=MspRole.ANALYST, username="analyst")


@pytest.fixture
def client_admin(tenant_a):
    return make_member(tenant_a, TenantRole.ADMIN, username="acme-boss")


# --- visibility ---------------------------------------------------------------------------------


def test_msp_admin_sees_every_tenant(client, admin_user, tenant_a, tenant_b):
    login_verified(client, admin_user)
    response = client.get(url("tenants_tenant_changelist"))
    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == {tenant_a, tenant_b}
    text = page_text(response)
    assert "Acme Analytics" in text
    assert "Borealis Bank" in text


def test_engineer_sees_only_assigned_tenants(client, engineer, tenant_a, tenant_b):
    login_verified(client, engineer)
    response = client.get(url("tenants_tenant_changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [tenant_a]
    text = page_text(response)
    assert "Acme Analytics" in text
    # Not in the rows, nor in the filter sidebar, nor anywhere else.
    assert "Borealis" not in text

    own = client.get(url("tenants_tenant_change", tenant_a.pk))
    assert own.status_code == 200
    assert "Acme Analytics" in page_text(own)

    foreign = client.get(url("tenants_tenant_change", tenant_b.pk), follow=True)
    assert foreign.redirect_chain[0][1] == 302
    text = page_text(foreign)
    assert "doesn’t exist" in text
    assert "Borealis" not in text


def test_engineer_cannot_change_a_foreign_tenant(client, engineer, tenant_b):
    login_verified(client, engineer)
    response = client.post(
        url("tenants_tenant_change", tenant_b.pk), {"name": "Taken over", "industry": "x"}
    )
    assert response.status_code == 302
    tenant_b.refresh_from_db()
    assert tenant_b.name == "Borealis Bank"
    assert not events(tenant=tenant_b, action=AuditAction.UPDATE).exists()


def test_tenant_filter_choices_are_visible_tenants_only(client, engineer, tenant_a, tenant_b):
    tenant_c = TenantFactory(name="Cobalt Care", slug="cobalt")
    StaffAssignment.objects.create(user=engineer, tenant=tenant_c)
    login_verified(client, engineer)
    response = client.get(url("tenants_membership_changelist"))
    assert response.status_code == 200
    tenant_filters = [
        spec
        for spec in response.context["cl"].filter_specs
        if isinstance(spec, VisibleTenantListFilter)
    ]
    assert [choice for spec in tenant_filters for choice in spec.lookup_choices] == [
        (tenant_a.pk, "Acme Analytics"),
        (tenant_c.pk, "Cobalt Care"),
    ]
    assert "Borealis" not in page_text(response)


def test_analyst_views_but_cannot_write(client, analyst, tenant_a):
    login_verified(client, analyst)
    listing = client.get(url("tenants_tenant_changelist"))
    assert listing.status_code == 200
    assert "Acme Analytics" in page_text(listing)
    # No lifecycle or other actions for a read-only role.
    assert listing.context["action_form"] is None

    view = client.get(url("tenants_tenant_change", tenant_a.pk))
    assert view.status_code == 200
    assert "View tenant" in page_text(view)
    assert "lifecycle_buttons" not in view.context

    change = client.post(
        url("tenants_tenant_change", tenant_a.pk),
        {"name": "Renamed", "industry": "Retail", "region": "us-east"},
    )
    assert change.status_code == 403
    tenant_a.refresh_from_db()
    assert (tenant_a.name, tenant_a.industry) == ("Acme Analytics", "Finance")

    assert client.get(url("tenants_tenant_add")).status_code == 403
    add = client.post(url("tenants_tenant_add"), {"name": "Sneaky", "slug": "sneaky"})
    assert add.status_code == 403
    assert not Tenant.objects.filter(slug="sneaky").exists()

    lifecycle = client.post(url("tenants_tenant_lifecycle", tenant_a.pk, "onboarding"))
    assert lifecycle.status_code == 403
    tenant_a.refresh_from_db()
    assert tenant_a.status == TenantStatus.PROSPECT
    assert not events(action__in=[AuditAction.UPDATE, AuditAction.TRANSITION]).exists()


def test_client_users_never_get_into_the_admin(client, client_admin):
    client.force_login(client_admin)
    for path in ("/admin/", url("tenants_tenant_changelist"), url("tenants_auditevent_changelist")):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_client_user_wrongly_marked_staff_still_sees_nothing(client, client_admin):
    client_admin.is_staff = True
    client_admin.save()
    login_verified(client, client_admin)
    # The site itself is gated on msp_role, not on is_staff alone.
    for path in ("/admin/", url("tenants_tenant_changelist"), url("tenants_auditevent_changelist")):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


# --- lifecycle ----------------------------------------------------------------------------------


def test_lifecycle_actions_go_through_the_service_and_audit(client, engineer, tenant_a):
    login_verified(client, engineer)

    response = run_action(client, "tenant", "start_onboarding", [tenant_a])
    assert response.status_code == 200
    tenant_a.refresh_from_db()
    assert tenant_a.status == TenantStatus.ONBOARDING
    assert [step.key for step in steps_of(tenant_a)] == [key for key, *_ in ONBOARDING_STEPS]
    started = events(tenant=tenant_a, action=AuditAction.TRANSITION).get()
    assert started.changes == {"status": ["prospect", "onboarding"]}
    assert (started.source, started.actor_user) == ("admin", engineer)

    refused = run_action(client, "tenant", "activate", [tenant_a])
    text = page_text(refused)
    assert "Acme Analytics: Onboarding is not finished. Required steps still open:" in text
    assert "Contract and service plan signed" in text
    tenant_a.refresh_from_db()
    assert tenant_a.status == TenantStatus.ONBOARDING
    assert events(tenant=tenant_a, action=AuditAction.TRANSITION).count() == 1

    required = [step for step in steps_of(tenant_a) if step.required]
    marked = run_action(client, "onboardingstep", "mark_done", required)
    assert "Marked done" in page_text(marked)
    assert all(step.done for step in steps_of(tenant_a) if step.required)
    assert {step.completed_by for step in steps_of(tenant_a) if step.required} == {engineer}
    assert events(tenant=tenant_a, object_type="tenants.OnboardingStep").count() == REQUIRED_STEPS

    activated = run_action(client, "tenant", "activate", [tenant_a])
    assert "Now active: Acme Analytics." in page_text(activated)
    tenant_a.refresh_from_db()
    assert tenant_a.status == TenantStatus.ACTIVE
    assert [event.changes["status"] for event in events(action=AuditAction.TRANSITION)] == [
        ["prospect", "onboarding"],
        ["onboarding", "active"],
    ]


def test_refused_move_is_reported_per_tenant_and_others_proceed(
    client, admin_user, tenant_a, tenant_b
):
    services.tenant_transition(tenant=tenant_b, to_status=TenantStatus.ONBOARDING)
    login_verified(client, admin_user)
    response = run_action(client, "tenant", "start_onboarding", [tenant_a, tenant_b])
    text = page_text(response)
    assert "Borealis Bank: A tenant cannot move from onboarding to onboarding" in text
    assert "Now onboarding: Acme Analytics." in text
    tenant_a.refresh_from_db()
    tenant_b.refresh_from_db()
    assert (tenant_a.status, tenant_b.status) == (TenantStatus.ONBOARDING, TenantStatus.ONBOARDING)


def test_lifecycle_buttons_on_the_change_page(client, admin_user, tenant_a):
    login_verified(client, admin_user)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    assert [button["label"] for button in page.context["lifecycle_buttons"]] == [
        "Start onboarding",
        "Offboard",
    ]
    assert client.get(url("tenants_tenant_lifecycle", tenant_a.pk, "onboarding")).status_code == 405

    response = client.post(url("tenants_tenant_lifecycle", tenant_a.pk, "onboarding"), follow=True)
    assert response.redirect_chain[-1][0] == url("tenants_tenant_change", tenant_a.pk)
    tenant_a.refresh_from_db()
    assert tenant_a.status == TenantStatus.ONBOARDING
    # The checklist inline appears once the tenant is onboarding.
    assert inline_prefix(response, OnboardingStep)
    assert [b["label"] for b in response.context["lifecycle_buttons"]] == ["Activate", "Offboard"]


def test_lifecycle_view_hides_foreign_tenants(client, engineer, tenant_b):
    login_verified(client, engineer)
    response = client.post(url("tenants_tenant_lifecycle", tenant_b.pk, "offboarded"))
    assert response.status_code == 302
    tenant_b.refresh_from_db()
    assert tenant_b.status == TenantStatus.PROSPECT


def test_checklist_inline_ticks_steps_through_the_service(client, engineer, tenant_a):
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    login_verified(client, engineer)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    data = form_data(page)
    prefix = inline_prefix(page, OnboardingStep)
    data[f"{prefix}-0-done"] = "on"
    data[f"{prefix}-1-notes"] = "Escalation list in the shared drive"
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""

    first, second, *_ = steps_of(tenant_a)
    assert first.done
    assert first.completed_by == engineer
    assert not second.done
    assert second.notes == "Escalation list in the shared drive"
    step_events = events(tenant=tenant_a, object_type="tenants.OnboardingStep")
    assert {event.object_id for event in step_events} == {str(first.pk), str(second.pk)}
    assert step_events.get(object_id=str(second.pk)).changes == {
        "notes": ["", "Escalation list in the shared drive"]
    }
    # Nothing else on the page changed, so nothing else was written.
    assert not events(object_type="tenants.Tenant", action=AuditAction.UPDATE).exists()
    assert not events(object_type="tenants.ServicePlan").exists()


# --- tenant writes ------------------------------------------------------------------------------


def test_creating_a_tenant_uses_the_service_plan_and_audit(client, admin_user):
    login_verified(client, admin_user)
    response = client.post(
        url("tenants_tenant_add"),
        {"name": "Cobalt Care", "slug": "cobalt", "industry": "Health", "region": "eu-north"},
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="cobalt")
    assert tenant.status == TenantStatus.PROSPECT
    assert ServicePlan.objects.filter(tenant=tenant).exists()
    created = events(tenant=tenant, action=AuditAction.CREATE).get()
    assert created.object_type == "tenants.Tenant"
    assert created.changes["name"] == [None, "Cobalt Care"]
    assert (created.source, created.actor_user) == ("admin", admin_user)


def test_engineer_who_creates_a_tenant_is_assigned_to_it(client, engineer):
    login_verified(client, engineer)
    response = client.post(url("tenants_tenant_add"), {"name": "Delta Dynamics", "slug": "delta"})
    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="delta")
    assert StaffAssignment.objects.filter(tenant=tenant, user=engineer).exists()
    listing = client.get(url("tenants_tenant_changelist"))
    assert "Delta Dynamics" in page_text(listing)


def test_duplicate_slug_is_a_form_error_not_a_crash(client, admin_user, tenant_a):
    login_verified(client, admin_user)
    response = client.post(url("tenants_tenant_add"), {"name": "Other", "slug": "acme"})
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert Tenant.objects.count() == 1


def test_editing_a_tenant_and_its_plan_audits_the_changed_fields(client, engineer, tenant_a):
    login_verified(client, engineer)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    data = form_data(page)
    plan_prefix = inline_prefix(page, ServicePlan)
    data["industry"] = "Insurance"
    data["status"] = TenantStatus.ACTIVE  # read-only on the form: ignored
    data[f"{plan_prefix}-0-tier"] = "enterprise"
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 302

    tenant_a.refresh_from_db()
    assert (tenant_a.industry, tenant_a.status) == ("Insurance", TenantStatus.PROSPECT)
    update = events(object_type="tenants.Tenant", action=AuditAction.UPDATE).get()
    assert update.tenant == tenant_a
    assert update.changes["industry"] == ["Finance", "Insurance"]
    assert "status" not in update.changes
    assert update.source == "admin"
    plan_update = events(object_type="tenants.ServicePlan").get()
    assert plan_update.changes == {"tier": ["professional", "enterprise"]}
    assert ServicePlan.objects.get(tenant=tenant_a).tier == "enterprise"


def test_staff_require_two_factor_sign_in_for_a_tenant_and_it_is_audited(
    client, engineer, tenant_a
):
    login_verified(client, engineer)
    data = form_data(client.get(url("tenants_tenant_change", tenant_a.pk)))
    data["require_mfa"] = "on"
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 302

    tenant_a.refresh_from_db()
    assert tenant_a.require_mfa
    update = events(object_type="tenants.Tenant", action=AuditAction.UPDATE).get()
    assert update.changes == {"require_mfa": [False, True]}


def test_slug_and_status_cannot_be_edited(client, admin_user, tenant_a):
    login_verified(client, admin_user)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    data = form_data(page)
    data["slug"] = "hijacked"
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 302
    tenant_a.refresh_from_db()
    assert tenant_a.slug == "acme"
    assert not events(action=AuditAction.UPDATE).exists()


def test_tenants_cannot_be_deleted(client, admin_user, tenant_a):
    login_verified(client, admin_user)
    assert client.get(url("tenants_tenant_delete", tenant_a.pk)).status_code == 403
    listing = client.get(url("tenants_tenant_changelist"))
    assert "delete_selected" not in dict(listing.context["action_form"].fields["action"].choices)


# --- people -------------------------------------------------------------------------------------


def test_membership_inline_adds_with_audit_and_removes_through_the_service(
    client, engineer, tenant_a, tenant_b
):
    loose = User.objects.create_user(username="newcomer", password="x-very-long-1")
    leaving = make_member(tenant_a, TenantRole.MEMBER, username="leaving")
    services.token_issue(user=leaving, name="laptop")
    other = make_member(tenant_b, TenantRole.MEMBER, username="borealis-member")
    login_verified(client, engineer)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    data = form_data(page)
    prefix = inline_prefix(page, Membership)
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-0-DELETE"] = "on"
    data[f"{prefix}-{total}-user"] = str(loose.pk)
    data[f"{prefix}-{total}-role"] = TenantRole.VIEWER
    data[f"{prefix}-TOTAL_FORMS"] = str(total + 1)
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 302

    assert Membership.objects.get(user=loose).tenant == tenant_a
    leaving.refresh_from_db()
    assert not leaving.is_active
    assert not Membership.objects.filter(user=leaving).exists()
    assert ApiToken.objects.get(user=leaving).revoked_at is not None
    member_events = events(tenant=tenant_a, object_type="tenants.Membership")
    assert [event.action for event in member_events] == [AuditAction.DELETE, AuditAction.CREATE]

    # A member of another tenant cannot be pulled in by id: same error as a missing user.
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    data = form_data(page)
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-{total}-user"] = str(other.pk)
    data[f"{prefix}-{total}-role"] = TenantRole.VIEWER
    data[f"{prefix}-TOTAL_FORMS"] = str(total + 1)
    refused = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert refused.status_code == 200
    assert "Select a valid choice" in page_text(refused)
    assert Membership.objects.get(user=other).tenant == tenant_b


def test_membership_role_change_goes_through_the_service(client, engineer, tenant_a):
    member = make_member(tenant_a, TenantRole.MEMBER, username="promoted")
    membership = Membership.objects.get(user=member)
    login_verified(client, engineer)
    page = client.get(url("tenants_membership_change", membership.pk))
    data = form_data(page)
    data["role"] = TenantRole.ADMIN
    assert client.post(url("tenants_membership_change", membership.pk), data).status_code == 302
    membership.refresh_from_db()
    assert membership.role == TenantRole.ADMIN
    assert events(object_type="tenants.Membership").get().changes == {
        "role": ["tenant_member", "tenant_admin"]
    }


def test_membership_add_offers_only_visible_tenants(client, engineer, tenant_a, tenant_b):
    loose = User.objects.create_user(username="newcomer", password="x-very-long-1")
    login_verified(client, engineer)
    page = client.get(url("tenants_membership_add"))
    assert list(page.context["adminform"].form.fields["tenant"].queryset) == [tenant_a]
    refused = client.post(
        url("tenants_membership_add"),
        {"user": loose.pk, "tenant": tenant_b.pk, "role": TenantRole.MEMBER},
    )
    assert refused.status_code == 200
    assert "tenant" in refused.context["adminform"].form.errors
    added = client.post(
        url("tenants_membership_add"),
        {"user": loose.pk, "tenant": tenant_a.pk, "role": TenantRole.MEMBER},
    )
    assert added.status_code == 302
    assert Membership.objects.get(user=loose).tenant == tenant_a
    created = events(object_type="tenants.Membership").get()
    assert (created.tenant, created.action) == (tenant_a, AuditAction.CREATE)
    assert created.changes["role"] == [None, TenantRole.MEMBER]


def test_only_msp_admin_manages_staff_assignments(client, admin_user, engineer, tenant_a, tenant_b):
    colleague = make_staff(role=MspRole.ENGINEER, username="colleague")
    login_verified(client, engineer)
    assert client.get(url("tenants_staffassignment_add")).status_code == 403
    refused = client.post(
        url("tenants_staffassignment_add"), {"user": colleague.pk, "tenant": tenant_a.pk}
    )
    assert refused.status_code == 403

    login_verified(client, admin_user)
    response = client.post(
        url("tenants_staffassignment_add"), {"user": colleague.pk, "tenant": tenant_b.pk}
    )
    assert response.status_code == 302
    assignment = StaffAssignment.objects.get(user=colleague)
    assert assignment.tenant == tenant_b
    assert events(tenant=tenant_b, object_type="tenants.StaffAssignment").get().action == "create"

    delete = client.post(url("tenants_staffassignment_delete", assignment.pk), {"post": "yes"})
    assert delete.status_code == 302
    assert not StaffAssignment.objects.filter(user=colleague).exists()
    assert [e.action for e in events(object_type="tenants.StaffAssignment")] == [
        AuditAction.CREATE,
        AuditAction.DELETE,
    ]


def test_user_admin_is_for_msp_admin_only(client, admin_user, engineer, analyst):
    for user in (engineer, analyst):
        login_verified(client, user)
        assert client.get(url("tenants_user_changelist")).status_code == 403
        assert client.get(url("tenants_user_change", admin_user.pk)).status_code == 403
        index = client.get("/admin/")
        models = [m["object_name"] for app in index.context["app_list"] for m in app["models"]]
        assert "User" not in models

    login_verified(client, admin_user)
    listing = client.get(url("tenants_user_changelist"))
    assert listing.status_code == 200
    assert "MSP engineer" in page_text(listing)


def test_user_admin_creates_staff_and_client_users_through_services(client, admin_user, tenant_a):
    login_verified(client, admin_user)
    password = "a-long-enough-passphrase-42"
    staff = client.post(
        url("tenants_user_add"),
        {
            "username": "new-engineer",
            "msp_role": MspRole.ENGINEER,
            "usable_password": "true",
            "password1": password,
            "password2": password,
        },
    )
    assert staff.status_code == 302
    engineer = User.objects.get(username="new-engineer")
    assert (engineer.is_staff, engineer.is_superuser) == (True, False)
    assert engineer.check_password(password)

    member = client.post(
        url("tenants_user_add"),
        {
            "username": "acme-analyst",
            "tenant": tenant_a.pk,
            "tenant_role": TenantRole.VIEWER,
            "usable_password": "false",
        },
    )
    assert member.status_code == 302
    client_user = User.objects.get(username="acme-analyst")
    assert not client_user.is_staff
    assert Membership.objects.get(user=client_user).role == TenantRole.VIEWER
    assert [(e.object_type, e.action) for e in events(object_type__in=["tenants.User"])] == [
        ("tenants.User", AuditAction.CREATE)
    ]
    assert events(tenant=tenant_a, object_type="tenants.Membership").get().action == "create"

    neither = client.post(
        url("tenants_user_add"), {"username": "nobody", "usable_password": "false"}
    )
    assert neither.status_code == 200
    assert not User.objects.filter(username="nobody").exists()


def test_client_user_cannot_be_made_staff_in_the_user_admin(client, admin_user, client_admin):
    login_verified(client, admin_user)
    page = client.get(url("tenants_user_change", client_admin.pk))
    data = form_data(page)
    data["msp_role"] = MspRole.ADMIN
    response = client.post(url("tenants_user_change", client_admin.pk), data)
    assert response.status_code == 200
    assert "remove the membership" in page_text(response)
    client_admin.refresh_from_db()
    assert (client_admin.msp_role, client_admin.is_staff, client_admin.is_superuser) == (
        "",
        False,
        False,
    )


def test_msp_admin_cannot_lock_themselves_out(client, admin_user):
    login_verified(client, admin_user)
    page = client.get(url("tenants_user_change", admin_user.pk))
    data = form_data(page)
    data["msp_role"] = MspRole.ANALYST
    data.pop("is_active")
    response = client.post(url("tenants_user_change", admin_user.pk), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"msp_role", "is_active"}
    admin_user.refresh_from_db()
    assert (admin_user.msp_role, admin_user.is_active) == (MspRole.ADMIN, True)


def test_role_change_in_user_admin_sets_admin_access_and_audits(client, admin_user, engineer):
    login_verified(client, admin_user)
    page = client.get(url("tenants_user_change", engineer.pk))
    data = form_data(page)
    data["msp_role"] = MspRole.ADMIN
    assert client.post(url("tenants_user_change", engineer.pk), data).status_code == 302
    engineer.refresh_from_db()
    assert (engineer.msp_role, engineer.is_staff, engineer.is_superuser) == (
        "msp_admin",
        True,
        True,
    )
    change = events(object_type="tenants.User", action=AuditAction.UPDATE).get()
    assert change.changes["msp_role"] == ["msp_engineer", "msp_admin"]
    assert change.changes["is_superuser"] == [False, True]
    assert "password" not in change.changes


# --- tokens -------------------------------------------------------------------------------------


def test_token_revoke_action_revokes_and_audits(client, engineer, client_admin, tenant_b):
    token, _plaintext = services.token_issue(user=client_admin, name="ci")
    foreign_user = make_member(tenant_b, TenantRole.ADMIN, username="borealis-ci")
    foreign, _ = services.token_issue(user=foreign_user, name="borealis-ci-token")
    login_verified(client, engineer)

    listing = client.get(url("tenants_apitoken_changelist"))
    assert list(listing.context["cl"].result_list) == [token]
    assert "borealis-ci-token" not in page_text(listing)

    response = run_action(client, "apitoken", "revoke", [token, foreign])
    assert "Revoked: ci" in page_text(response)
    token.refresh_from_db()
    foreign.refresh_from_db()
    assert token.revoked_at is not None
    assert foreign.revoked_at is None  # not visible, so not selectable
    revoke = events(action=AuditAction.REVOKE).get()
    assert (revoke.object_id, revoke.source, revoke.actor_user) == (
        str(token.pk),
        "admin",
        engineer,
    )


def test_tokens_cannot_be_added_or_revoked_by_an_analyst(client, analyst, client_admin):
    token, _ = services.token_issue(user=client_admin, name="ci")
    login_verified(client, analyst)
    assert client.get(url("tenants_apitoken_add")).status_code == 403
    listing = client.get(url("tenants_apitoken_changelist"))
    assert listing.context["action_form"] is None
    run_action(client, "apitoken", "revoke", [token])
    token.refresh_from_db()
    assert token.revoked_at is None

    detail = client.get(url("tenants_apitoken_change", token.pk))
    assert detail.status_code == 200
    assert token.prefix in page_text(detail)
    assert token.secret_hash not in page_text(detail)
    assert "secret" not in page_text(detail).lower()
    # Not even as a filter from the URL, which would let one probe the hash.
    probe = client.get(url("tenants_apitoken_changelist"), {"secret_hash__startswith": "a"})
    assert probe.status_code == 400


# --- audit log ----------------------------------------------------------------------------------


def test_audit_log_is_read_only_even_for_msp_admin(client, admin_user, tenant_a):
    event = events(tenant=tenant_a).first()
    login_verified(client, admin_user)
    listing = client.get(url("tenants_auditevent_changelist"))
    assert listing.status_code == 200
    assert listing.context["action_form"] is None  # no delete_selected, no action at all
    assert client.get(url("tenants_auditevent_add")).status_code == 403
    assert client.post(url("tenants_auditevent_add"), {"action": "create"}).status_code == 403
    view = client.get(url("tenants_auditevent_change", event.pk))
    assert view.status_code == 200
    assert "View audit event" in page_text(view)
    change = client.post(url("tenants_auditevent_change", event.pk), {"object_repr": "forged"})
    assert change.status_code == 403
    assert client.get(url("tenants_auditevent_delete", event.pk)).status_code == 403
    assert (
        client.post(url("tenants_auditevent_delete", event.pk), {"post": "yes"}).status_code == 403
    )
    event.refresh_from_db()
    assert event.object_repr == "Acme Analytics"
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_log_shows_staff_only_their_tenants(client, admin_user, engineer, tenant_a, tenant_b):
    msp_wide = services.staff_user_create(username="new-analyst", msp_role=MspRole.ANALYST)
    login_verified(client, engineer)
    seen = client.get(url("tenants_auditevent_changelist")).context["cl"].result_list
    assert {event.tenant for event in seen} == {tenant_a}

    login_verified(client, admin_user)
    seen = client.get(url("tenants_auditevent_changelist")).context["cl"].result_list
    assert {event.tenant for event in seen} == {tenant_a, tenant_b, None}
    assert str(msp_wide.pk) in {event.object_id for event in seen if event.tenant is None}


# --- onboarding steps ---------------------------------------------------------------------------


def test_onboarding_step_changelist_is_scoped(client, engineer, admin_user, tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):
        services.tenant_transition(tenant=tenant, to_status=TenantStatus.ONBOARDING)

    login_verified(client, engineer)
    response = client.get(url("tenants_onboardingstep_changelist"))
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert len(rows) == len(ONBOARDING_STEPS)
    assert {step.tenant_id for step in rows} == {tenant_a.pk}
    assert "Borealis" not in page_text(response)

    foreign_step = steps_of(tenant_b)[0]
    foreign = client.get(url("tenants_onboardingstep_change", foreign_step.pk))
    assert foreign.status_code == 302

    open_only = client.get(url("tenants_onboardingstep_changelist"), {"done": "no"})
    assert len(open_only.context["cl"].result_list) == len(ONBOARDING_STEPS)

    login_verified(client, admin_user)
    everything = client.get(url("tenants_onboardingstep_changelist"))
    assert len(everything.context["cl"].result_list) == 2 * len(ONBOARDING_STEPS)


def test_staff_with_no_tenant_sees_empty_lists_not_errors(client, tenant_a):
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    unassigned = make_staff(role=MspRole.ENGINEER, username="bench")
    login_verified(client, unassigned)
    for model in ("onboardingstep", "tenant", "membership", "apitoken", "auditevent"):
        response = client.get(url(f"tenants_{model}_changelist"))
        assert response.status_code == 200, model
        assert list(response.context["cl"].result_list) == [], model


def test_onboarding_step_change_form_ticks_through_the_service(client, engineer, tenant_a):
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)
    step = steps_of(tenant_a)[0]
    login_verified(client, engineer)
    page = client.get(url("tenants_onboardingstep_change", step.pk))
    data = form_data(page)
    data["done"] = "on"
    assert client.post(url("tenants_onboardingstep_change", step.pk), data).status_code == 302
    step = steps_of(tenant_a)[0]
    assert step.done
    assert step.completed_by == engineer
    assert events(object_type="tenants.OnboardingStep").get().object_id == str(step.pk)
    assert client.get(url("tenants_onboardingstep_add")).status_code == 403


# --- structure ----------------------------------------------------------------------------------


def test_every_admin_of_a_tenant_bound_model_uses_the_scoped_base():
    offenders = []
    for model, model_admin in django_admin.site._registry.items():
        bound = model is Tenant or any(
            field.is_relation and field.related_model is Tenant
            for field in model._meta.concrete_fields
        )
        if bound and not isinstance(model_admin, StaffScopedAdmin):
            offenders.append(model._meta.label)
    assert offenders == []


def test_base_gives_tenant_owned_admins_a_scoped_tenant_picker(rf, engineer, tenant_a, tenant_b):
    """What a later app's admin of a tenant-owned model (non-editable tenant) gets for free."""
    services.tenant_transition(tenant=tenant_a, to_status=TenantStatus.ONBOARDING)

    class StepAdmin(StaffScopedAdmin, django_admin.ModelAdmin):
        fields = ("key", "title", "required")

    model_admin = StepAdmin(OnboardingStep, django_admin.AdminSite(name="picker"))
    request = rf.post("/admin/")
    request.user = engineer
    with tenant_scope(tenant_a.id):
        assert model_admin.get_fields(request)[0] == "tenant"
        form_class = model_admin.get_form(request)
        assert list(form_class.base_fields["tenant"].queryset) == [tenant_a]

        foreign = form_class({"tenant": tenant_b.pk, "key": "dpa", "title": "DPA signed"})
        assert not foreign.is_valid()
        assert "tenant" in foreign.errors
        duplicate = form_class({"tenant": tenant_a.pk, "key": "contract_signed", "title": "Again"})
        assert not duplicate.is_valid()  # unique per tenant, so the tenant takes part

        form = form_class({"tenant": tenant_a.pk, "key": "dpa", "title": "DPA signed"})
        assert form.is_valid(), form.errors
        step = model_admin.save_form(request, form, change=False)
        model_admin.save_model(request, step, form, change=False)
        assert OnboardingStep.objects.get(key="dpa").tenant == tenant_a
        # On change the tenant is shown, never editable.
        assert "tenant" in model_admin.get_readonly_fields(request, step)
        assert "tenant" not in model_admin.get_form(request, step, change=True).base_fields
    created = events(object_type="tenants.OnboardingStep").get()
    assert (created.tenant, created.action) == (tenant_a, AuditAction.CREATE)
    assert created.changes["title"] == [None, "DPA signed"]


@pytest.mark.parametrize(
    "model", ["tenant", "onboardingstep", "membership", "apitoken", "auditevent", "user"]
)
def test_changelist_queries_do_not_grow_with_rows(client, admin_user, tenant_a, model):
    def add_tenants(count):
        for _ in range(count):
            tenant = TenantFactory()
            services.tenant_transition(tenant=tenant, to_status=TenantStatus.ONBOARDING)
            services.token_issue(user=make_member(tenant, TenantRole.MEMBER), name="ci")

    login_verified(client, admin_user)
    changelist = url(f"tenants_{model}_changelist")
    add_tenants(2)
    client.get(changelist)  # warm per-process caches (content types, session)
    with CaptureQueriesContext(connection) as few:
        small = client.get(changelist)
    add_tenants(6)
    with CaptureQueriesContext(connection) as many:
        large = client.get(changelist)
    assert large.context["cl"].result_count > small.context["cl"].result_count
    assert len(many.captured_queries) == len(few.captured_queries)


# --- the console's shape ------------------------------------------------------------------------


def test_index_lists_tenants_first_and_hides_the_scheduler_tables_from_engineers(
    client, engineer, admin_user
):
    login_verified(client, engineer)
    apps = client.get(url("index")).context["app_list"]
    assert apps[0]["app_label"] == "tenants"
    assert apps[0]["models"][0]["object_name"] == "Tenant"
    assert "django_celery_beat" not in {app["app_label"] for app in apps}
    assert client.get(url("django_celery_beat_solarschedule_changelist")).status_code == 403
    assert client.get(url("django_celery_beat_periodictask_changelist")).status_code == 403

    client.logout()
    login_verified(client, admin_user)  # an msp_admin is a superuser: they keep them
    apps = client.get(url("index")).context["app_list"]
    assert "django_celery_beat" in {app["app_label"] for app in apps}
    assert client.get(url("django_celery_beat_periodictask_changelist")).status_code == 200


def test_the_plan_is_edited_as_durations_weekdays_and_frameworks(client, engineer, tenant_a):
    login_verified(client, engineer)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    text = page_text(page)
    plan_prefix = inline_prefix(page, ServicePlan)
    assert f'name="{plan_prefix}-0-sev1_acknowledge_minutes" value="15 min"' in text
    assert f'name="{plan_prefix}-0-sev1_resolve_minutes" value="4 h"' in text
    assert 'type="checkbox" name="' + f'{plan_prefix}-0-business_days" value="0"' in text
    assert "EU Artificial Intelligence Act" in text or "eu-ai-act" in text

    data = form_data(page)
    data[f"{plan_prefix}-0-sev1_resolve_minutes"] = "1 d 2 h"
    data[f"{plan_prefix}-0-business_days"] = ["1", "0", "2"]
    data[f"{plan_prefix}-0-frameworks_in_scope"] = ["eu-ai-act", "nist-ai-rmf"]
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 302

    plan = ServicePlan.objects.get(tenant=tenant_a)
    assert plan.sev1_resolve_minutes == 26 * 60
    assert plan.business_days == [0, 1, 2]
    assert plan.frameworks_in_scope == ["eu-ai-act", "nist-ai-rmf"]
    update = events(object_type="tenants.ServicePlan").get()
    assert update.changes["sev1_resolve_minutes"] == [240, 1560]


@pytest.mark.parametrize("typed", ["soon", "4 x", "0.5 min", "99999999999999999999 d"])
def test_a_duration_people_cannot_mean_is_a_form_error(client, engineer, tenant_a, typed):
    login_verified(client, engineer)
    page = client.get(url("tenants_tenant_change", tenant_a.pk))
    plan_prefix = inline_prefix(page, ServicePlan)
    data = form_data(page)
    data[f"{plan_prefix}-0-sev2_acknowledge_minutes"] = typed
    response = client.post(url("tenants_tenant_change", tenant_a.pk), data)
    assert response.status_code == 200  # the form again, with its error
    assert response.context["errors"]
    assert ServicePlan.objects.get(tenant=tenant_a).sev2_acknowledge_minutes == 30
