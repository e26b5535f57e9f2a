"""Tenants API: lifecycle, tokens, roles, error format, query budgets and the audit log."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import services
from tenants.models import (
    ApiToken,
    AuditEvent,
    Membership,
    MspRole,
    OnboardingStep,
    Tenant,
    TenantRole,
    TenantStatus,
)
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_member, make_staff, make_token

pytestmark = pytest.mark.django_db


def error_fields(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return body["error"].get("fields", {})


# --- Tenants and lifecycle ------------------------------------------------------------------


class TestTenantDirectory:
    def test_msp_admin_sees_every_tenant(self, msp_admin, tenant_a, tenant_b):
        slugs = [row["slug"] for row in msp_admin.client.get("/api/v1/tenants/").json()["results"]]
        assert slugs == ["acme", "borealis"]

    def test_engineer_sees_assigned_tenants_only(self, engineer_a, tenant_b):
        rows = engineer_a.client.get("/api/v1/tenants/").json()["results"]
        assert [row["slug"] for row in rows] == ["acme"]
        assert engineer_a.client.get("/api/v1/tenants/borealis/").status_code == 404

    def test_client_sees_own_tenant_only(self, admin_a, tenant_b):
        rows = admin_a.client.get("/api/v1/tenants/").json()["results"]
        assert [row["slug"] for row in rows] == ["acme"]
        foreign = admin_a.client.get("/api/v1/tenants/borealis/")
        missing = admin_a.client.get("/api/v1/tenants/nope/")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content

    def test_staff_create_a_tenant_with_its_slug_and_plan(self, msp_admin):
        response = msp_admin.client.post(
            "/api/v1/tenants/", {"name": "Cobalt Health", "slug": "cobalt", "region": "us-east"}
        )
        assert response.status_code == 201, response.content
        assert response.json()["slug"] == "cobalt"
        assert response.json()["status"] == "prospect"
        tenant = Tenant.objects.get(slug="cobalt")
        assert tenant.plan.sla_target("SEV1") == (15, 240)

    def test_an_engineer_who_creates_a_tenant_is_assigned_to_it(self, engineer_a):
        response = engineer_a.client.post("/api/v1/tenants/", {"name": "Dunmore", "slug": "dun"})
        assert response.status_code == 201
        assert engineer_a.client.get("/api/v1/tenants/dun/").status_code == 200

    def test_clients_cannot_create_tenants(self, admin_a):
        response = admin_a.client.post("/api/v1/tenants/", {"name": "Evil", "slug": "evil"})
        assert response.status_code == 403
        assert not Tenant.objects.filter(slug="evil").exists()

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"name": "X", "slug": "Not A Slug!"}, "slug"),
            ({"slug": "no-name"}, "name"),
            ({"name": "X" * 201, "slug": "long"}, "name"),
            ({"name": "Acme Analytics", "slug": "acme2"}, "name"),
            ({"name": "X", "slug": "acme"}, "slug"),
            ({"name": "X", "slug": "ok", "colour": "red"}, "colour"),
            ({"name": "X", "slug": "login"}, "slug"),
            ({"name": ["not", "a", "string"], "slug": "ok"}, "name"),
        ],
        ids=[
            "bad-slug",
            "missing",
            "too-long",
            "duplicate-name",
            "duplicate-slug",
            "unknown",
            "reserved",
            "wrong-type",
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, msp_admin, tenant_a, payload, field
    ):
        before = Tenant.objects.count()
        response = msp_admin.client.post("/api/v1/tenants/", payload)
        assert response.status_code == 400
        assert field in error_fields(response)
        assert Tenant.objects.count() == before

    def test_malformed_json_is_a_clean_400(self, msp_admin):
        response = msp_admin.client.post(
            "/api/v1/tenants/", data="{not json", content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "parse_error"


class TestLifecycle:
    def transition(self, actor, slug, status):
        return actor.client.post(f"/api/v1/tenants/{slug}/transition", {"status": status})

    def test_full_path_with_onboarding_checklist(self, engineer_a, tenant_a):
        assert self.transition(engineer_a, "acme", "onboarding").status_code == 200
        steps = engineer_a.client.get("/api/v1/tenants/acme/onboarding/").json()["results"]
        assert [s["key"] for s in steps][:2] == ["contract_signed", "contacts_named"]

        refused = self.transition(engineer_a, "acme", "active")
        assert refused.status_code == 400
        assert "Onboarding is not finished" in error_fields(refused)["status"][0]
        tenant_a.refresh_from_db()
        assert tenant_a.status == TenantStatus.ONBOARDING

        for step in steps:
            if step["required"]:
                done = engineer_a.client.post(
                    f"/api/v1/tenants/acme/onboarding/{step['id']}/complete", {"notes": "ok"}
                )
                assert done.status_code == 200
                assert done.json()["done"] is True
        assert self.transition(engineer_a, "acme", "active").json()["status"] == "active"
        assert self.transition(engineer_a, "acme", "suspended").json()["status"] == "suspended"
        assert self.transition(engineer_a, "acme", "active").json()["status"] == "active"
        assert self.transition(engineer_a, "acme", "offboarded").json()["status"] == "offboarded"
        transitions = AuditEvent.objects.filter(tenant=tenant_a, action="transition")
        assert transitions.count() == 5

    @pytest.mark.parametrize("target", ["active", "suspended", "prospect", "dancing"])
    def test_invalid_transitions_are_refused_clearly(self, engineer_a, tenant_a, target):
        response = self.transition(engineer_a, "acme", target)
        assert response.status_code == 400
        assert "status" in error_fields(response)
        tenant_a.refresh_from_db()
        assert tenant_a.status == TenantStatus.PROSPECT

    def test_offboarded_is_final(self, engineer_a, tenant_a):
        self.transition(engineer_a, "acme", "offboarded")
        response = self.transition(engineer_a, "acme", "onboarding")
        assert "none (final state)" in error_fields(response)["status"][0]

    def test_clients_and_analysts_cannot_move_the_lifecycle(self, admin_a, tenant_a):
        analyst = make_staff(tenant_a, role=MspRole.ANALYST)
        analyst_actor = Actor(analyst, make_token(analyst))
        assert self.transition(admin_a, "acme", "onboarding").status_code == 403
        assert self.transition(analyst_actor, "acme", "onboarding").status_code == 403
        tenant_a.refresh_from_db()
        assert tenant_a.status == TenantStatus.PROSPECT

    def test_suspended_tenant_is_read_only_for_clients(self, admin_a, engineer_a, tenant_a):
        services.tenant_transition(tenant=tenant_a, to_status="onboarding")
        with tenant_scope(tenant_a.id):
            OnboardingStep.objects.update(completed_at=timezone.now())
        services.tenant_transition(tenant=tenant_a, to_status="active")
        services.tenant_transition(tenant=tenant_a, to_status="suspended")
        assert admin_a.client.get("/api/v1/tenants/acme/members/").status_code == 200
        response = admin_a.client.post("/api/v1/tenants/acme/members/", {"username": "late"})
        assert response.status_code == 403
        assert not Membership.objects.filter(user__username="late").exists()

    def test_plan_is_read_by_clients_and_changed_by_staff(self, admin_a, engineer_a, tenant_a):
        assert admin_a.client.get("/api/v1/tenants/acme/plan/").json()["coverage"] == "24x7"
        denied = admin_a.client.patch("/api/v1/tenants/acme/plan/", {"tier": "enterprise"})
        assert denied.status_code == 403
        changed = engineer_a.client.patch(
            "/api/v1/tenants/acme/plan/",
            {
                "coverage": "business_hours",
                "timezone": "Europe/London",
                "sev1_acknowledge_minutes": 10,
            },
        )
        assert changed.status_code == 200, changed.content
        assert changed.json()["timezone"] == "Europe/London"
        bad = engineer_a.client.patch("/api/v1/tenants/acme/plan/", {"timezone": "Mars/Base"})
        assert "timezone" in error_fields(bad)
        worse = engineer_a.client.patch(
            "/api/v1/tenants/acme/plan/", {"sev2_acknowledge_minutes": 100000}
        )
        assert "sev2_acknowledge_minutes" in error_fields(worse)
        tenant_a.plan.refresh_from_db()
        assert tenant_a.plan.timezone == "Europe/London"


# --- Tokens ---------------------------------------------------------------------------------


class TestTokens:
    def test_only_a_hash_is_stored_and_the_prefix_is_visible(self, admin_a):
        token = ApiToken.objects.get(user=admin_a.user)
        assert admin_a.token not in json.dumps(list(ApiToken.objects.values()), default=str)
        assert admin_a.token.split("_")[1] == token.prefix

    def test_token_created_through_the_api_is_shown_once(self, admin_a, admin_a_signed_in):
        created = admin_a_signed_in.client.post(
            "/api/v1/tenants/acme/tokens/", {"name": "ci", "scopes": ["read", "ingest"]}
        )
        assert created.status_code == 201
        plaintext = created.json()["token"]
        listed = admin_a.client.get("/api/v1/tenants/acme/tokens/").json()["results"]
        assert all("token" not in row for row in listed)
        assert plaintext not in json.dumps(listed)
        reader = Actor(admin_a.user, plaintext)
        assert reader.client.get("/api/v1/tenants/acme/members/").status_code == 200

    def test_revoked_token_is_refused(self, admin_a):
        token = ApiToken.objects.get(user=admin_a.user)
        assert (
            admin_a.client.post(f"/api/v1/tenants/acme/tokens/{token.pk}/revoke").json()["status"]
            == "revoked"
        )
        response = admin_a.client.get("/api/v1/tenants/acme/members/")
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]["message"]

    def test_expired_token_is_refused(self, admin_a):
        ApiToken.objects.filter(user=admin_a.user).update(
            expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        response = admin_a.client.get("/api/v1/tenants/acme/members/")
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["message"]

    @pytest.mark.parametrize("header", ["Bearer gw_nope_nope", "Bearer garbage", "Bearer "])
    def test_unknown_or_malformed_tokens_are_401(self, tenant_a, client, header):
        response = client.get("/api/v1/tenants/acme/members/", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert response.json()["error"]["status"] == 401

    def test_read_scope_cannot_write(self, admin_a):
        reader = Actor(admin_a.user, make_token(admin_a.user, scopes=["read"]))
        response = reader.client.post("/api/v1/tenants/acme/members/", {"username": "x1"})
        assert response.status_code == 403
        assert "write" in response.json()["error"]["message"]
        assert not Membership.objects.filter(user__username="x1").exists()

    def test_a_staff_token_bound_to_a_tenant_reaches_no_other(self, msp_admin, tenant_a, tenant_b):
        bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_a))
        assert bound.client.get("/api/v1/tenants/acme/members/").status_code == 200
        foreign = bound.client.get("/api/v1/tenants/borealis/members/")
        missing = bound.client.get("/api/v1/tenants/nope/members/")
        assert foreign.status_code == 404
        assert foreign.content == missing.content

    def test_last_used_is_written_at_most_once_a_minute(self, admin_a):
        admin_a.client.get("/api/v1/tenants/acme/members/")
        first = ApiToken.objects.get(user=admin_a.user).last_used_at
        assert first is not None
        admin_a.client.get("/api/v1/tenants/acme/members/")
        assert ApiToken.objects.get(user=admin_a.user).last_used_at == first
        ApiToken.objects.filter(user=admin_a.user).update(
            last_used_at=first - datetime.timedelta(minutes=2)
        )
        admin_a.client.get("/api/v1/tenants/acme/members/")
        assert ApiToken.objects.get(user=admin_a.user).last_used_at > first

    @pytest.mark.parametrize(
        ("own_scopes", "own_expiry_days", "asked"),
        [
            # The case: a read-write token asks for ingest too, and no expiry.
            (["read", "write"], None, {"scopes": ["read", "write", "ingest"]}),
            (["read", "write"], 7, {"scopes": ["read"]}),  # no expiry, when it has one
            (["read", "write"], 7, {"scopes": ["read"], "expires_in_days": 30}),  # later
            (["read", "write"], None, {"scopes": ["read"], "expires_in_days": 1}),  # narrower
        ],
    )
    def test_a_token_cannot_mint_a_token(self, admin_a, own_scopes, own_expiry_days, asked):
        minter = Actor(
            admin_a.user,
            make_token(admin_a.user, scopes=own_scopes, expires_in_days=own_expiry_days),
        )
        before = set(ApiToken.objects.values_list("pk", flat=True))
        response = minter.client.post("/api/v1/tenants/acme/tokens/", {"name": "ci", **asked})
        assert response.status_code == 403, response.content
        assert "cannot create tokens" in response.json()["error"]["message"]
        assert set(ApiToken.objects.values_list("pk", flat=True)) == before

    def test_a_staff_token_cannot_mint_a_token_either(self, msp_admin, tenant_a):
        response = msp_admin.client.post(
            "/api/v1/tenants/acme/tokens/", {"name": "ci", "scopes": ["read"]}
        )
        assert response.status_code == 403
        assert not ApiToken.objects.filter(name="ci").exists()

    def test_a_signed_in_person_mints_any_scope_and_expiry(self, admin_a_signed_in):
        response = admin_a_signed_in.client.post(
            "/api/v1/tenants/acme/tokens/",
            {"name": "ci", "scopes": ["read", "write", "ingest"]},
        )
        assert response.status_code == 201, response.content
        token = ApiToken.objects.get(pk=response.json()["id"])
        assert (token.scopes, token.expires_at, token.tenant.slug) == (
            ["read", "write", "ingest"],
            None,
            "acme",
        )

    def test_issuing_with_an_unknown_scope_is_refused(self, admin_a_signed_in):
        response = admin_a_signed_in.client.post(
            "/api/v1/tenants/acme/tokens/", {"name": "x", "scopes": ["root"]}
        )
        assert response.status_code == 400
        assert "scopes.0" in error_fields(response) or "scopes" in error_fields(response)


# --- Roles ----------------------------------------------------------------------------------


class TestRoles:
    def test_viewer_reads_but_cannot_write(self, tenant_a):
        viewer = make_member(tenant_a, TenantRole.VIEWER)
        actor = Actor(viewer, make_token(viewer))
        assert actor.client.get("/api/v1/tenants/acme/members/").status_code == 200
        assert actor.client.post("/api/v1/tenants/acme/tokens/", {"name": "x"}).status_code == 403

    def test_member_cannot_manage_the_team(self, tenant_a):
        member = make_member(tenant_a, TenantRole.MEMBER)
        actor = Actor(member, make_token(member))
        response = actor.client.post("/api/v1/tenants/acme/members/", {"username": "x2"})
        assert response.status_code == 403
        assert "tenant_member" in response.json()["error"]["message"]

    def test_admin_manages_members(self, admin_a):
        created = admin_a.client.post(
            "/api/v1/tenants/acme/members/",
            {"username": "carol", "email": "carol@acme.test", "role": "tenant_viewer"},
        )
        assert created.status_code == 201, created.content
        member_id = created.json()["id"]
        patched = admin_a.client.patch(
            f"/api/v1/tenants/acme/members/{member_id}/", {"role": "tenant_member"}
        )
        assert patched.json()["role"] == "tenant_member"
        assert (
            admin_a.client.delete(f"/api/v1/tenants/acme/members/{member_id}/").status_code == 204
        )
        assert not Membership.objects.filter(pk=member_id).exists()

    def test_weak_passwords_are_refused_by_the_same_rules_as_the_portal(self, admin_a):
        response = admin_a.client.post(
            "/api/v1/tenants/acme/members/", {"username": "weak", "password": "password123"}
        )
        assert response.status_code == 400
        assert "password" in error_fields(response)
        assert not Membership.objects.filter(user__username="weak").exists()

    def test_duplicate_username_is_refused(self, admin_a, admin_b):
        response = admin_a.client.post(
            "/api/v1/tenants/acme/members/", {"username": "borealis-admin"}
        )
        assert response.status_code == 400
        assert "username" in error_fields(response)

    def test_msp_admin_assigns_and_unassigns_staff(self, msp_admin, tenant_a):
        engineer = make_staff(role=MspRole.ENGINEER, username="newbie")
        created = msp_admin.client.post("/api/v1/tenants/acme/staff/", {"username": "newbie"})
        assert created.status_code == 201, created.content
        assert engineer.staff_assignments.filter(tenant=tenant_a).exists()
        gone = msp_admin.client.delete(f"/api/v1/tenants/acme/staff/{created.json()['id']}/")
        assert gone.status_code == 204
        assert not engineer.staff_assignments.exists()

    def test_me_lists_reachable_tenants_with_roles(self, admin_a, engineer_a):
        assert admin_a.client.get("/api/v1/me/").json()["tenants"] == [
            {"slug": "acme", "name": "Acme Analytics", "status": "prospect", "role": "tenant_admin"}
        ]
        assert engineer_a.client.get("/api/v1/me/").json()["tenants"][0]["role"] == "msp_engineer"


# --- Conventions ----------------------------------------------------------------------------


class TestConventions:
    def test_every_response_has_a_request_id_and_echoes_a_valid_one(self, admin_a):
        generated = admin_a.client.get("/api/v1/tenants/acme/members/")
        assert len(generated["X-Request-ID"]) == 32
        echoed = admin_a.client.get(
            "/api/v1/tenants/acme/members/", HTTP_X_REQUEST_ID="trace-12345678"
        )
        assert echoed["X-Request-ID"] == "trace-12345678"
        hostile = admin_a.client.get(
            "/api/v1/tenants/acme/members/", HTTP_X_REQUEST_ID="<script>alert(1)</script>"
        )
        assert hostile["X-Request-ID"] != "<script>alert(1)</script>"

    def test_authentication_and_tenant_resolution_cost_one_query(self, admin_a):
        admin_a.client.get("/api/v1/tenants/acme/plan/")  # last-used written once, a minute ago
        with CaptureQueriesContext(connection) as captured:
            response = admin_a.client.get("/api/v1/tenants/acme/plan/")
        assert response.status_code == 200
        data = [
            q["sql"]
            for q in captured.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "SELECT set_config"))
        ]
        assert len(data) == 2, data
        # The token, its user, its tenant and the user's role there, in one statement.
        assert all(name in data[0] for name in ("apitoken", "tenants_tenant", "membership"))
        assert "tenants_serviceplan" in data[1]

    def test_a_list_runs_the_same_queries_for_one_row_and_for_many(self, admin_a, tenant_a):
        url = "/api/v1/tenants/acme/members/"
        admin_a.client.get(url)
        with CaptureQueriesContext(connection) as one:
            assert admin_a.client.get(url).json()["count"] == 1
        for _ in range(25):
            make_member(tenant_a, TenantRole.MEMBER)
        with CaptureQueriesContext(connection) as many:
            assert admin_a.client.get(url).json()["count"] == 26
        assert len(many) == len(one)

    def test_page_size_has_a_hard_maximum(self, admin_a, tenant_a):
        response = admin_a.client.get("/api/v1/tenants/acme/members/", {"page_size": 100000})
        assert response.status_code == 200
        from tenants.api.views import MembershipViewSet

        assert MembershipViewSet.pagination_class.max_page_size == 500

    def test_unknown_api_path_is_json_404(self, client):
        response = client.get("/api/v1/nothing-here/")
        assert response.status_code == 404
        assert response.json() == {
            "error": {"status": 404, "code": "not_found", "message": "Not found."}
        }

    def test_unauthenticated_is_401_in_the_error_format(self, client, tenant_a):
        response = client.get("/api/v1/tenants/acme/members/")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"

    def test_schema_and_docs_are_served(self, client):
        assert client.get("/api/schema/").status_code == 200
        schema = client.get("/api/schema/?format=json").json()
        assert "/api/v1/tenants/{tenant_slug}/members/" in schema["paths"]
        docs = client.get("/api/docs/")
        assert docs.status_code == 200
        assert b"swagger-ui" in docs.content


# --- Audit ----------------------------------------------------------------------------------


class TestAudit:
    def test_api_writes_are_audited_with_actor_request_and_address(self, admin_a):
        admin_a.client.post(
            "/api/v1/tenants/acme/members/",
            {"username": "dave", "role": "tenant_viewer"},
            HTTP_X_REQUEST_ID="req-audit-0001",
            REMOTE_ADDR="203.0.113.9",
        )
        event = AuditEvent.objects.get(object_type="tenants.Membership", action="create")
        assert event.tenant.slug == "acme"
        assert event.actor_user == admin_a.user
        assert event.actor_token.user == admin_a.user
        assert event.source == "api"
        assert event.request_id == "req-audit-0001"
        assert event.source_address == "203.0.113.9"
        assert event.changes["role"] == [None, "tenant_viewer"]

    def test_tenant_admin_reads_own_audit_member_does_not(self, admin_a, admin_b, tenant_a):
        admin_a.client.post("/api/v1/tenants/acme/members/", {"username": "erin"})
        rows = admin_a.client.get("/api/v1/tenants/acme/audit/").json()["results"]
        assert rows
        assert {row["tenant"] for row in rows} == {"acme"}
        member = make_member(tenant_a, TenantRole.MEMBER)
        assert (
            Actor(member, make_token(member)).client.get("/api/v1/tenants/acme/audit/").status_code
            == 403
        )

    def test_msp_audit_is_limited_to_assignment(self, engineer_a, admin_a, admin_b, msp_admin):
        tenants_seen = {
            row["tenant"] for row in engineer_a.client.get("/api/v1/audit/").json()["results"]
        }
        assert tenants_seen == {"acme"}
        all_seen = {
            row["tenant"] for row in msp_admin.client.get("/api/v1/audit/").json()["results"]
        }
        assert {"acme", "borealis"} <= all_seen
        assert admin_a.client.get("/api/v1/audit/").json()["results"] == []

    def test_no_interface_edits_or_deletes_events(self, msp_admin, admin_a):
        event = AuditEvent.objects.filter(tenant__slug="acme").first()
        assert msp_admin.client.delete(f"/api/v1/audit/{event.pk}/").status_code == 405
        assert msp_admin.client.patch(f"/api/v1/audit/{event.pk}/", {}).status_code == 405
        with pytest.raises(PermissionError):
            event.save()
        with pytest.raises(PermissionError):
            AuditEvent.objects.filter(pk=event.pk).update(action="delete")
        with pytest.raises(PermissionError):
            AuditEvent.objects.filter(pk=event.pk).delete()

    def test_postgres_refuses_raw_updates_to_the_log(self, admin_a):
        if connection.vendor != "postgresql":
            pytest.skip("the append-only trigger is PostgreSQL's")
        from django.db import InternalError, ProgrammingError, transaction

        with (
            pytest.raises((InternalError, ProgrammingError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("UPDATE tenants_auditevent SET action = 'delete'")

    def test_postgres_refuses_truncating_the_log_even_for_its_owner(self, admin_a):
        if connection.vendor != "postgresql":
            pytest.skip("the append-only triggers are PostgreSQL's; SQLite has no TRUNCATE")
        from django.db import InternalError, ProgrammingError, transaction

        # The suite connects as the role that owns the table: privileges cannot stop it, the
        # statement trigger does (row triggers never fire on TRUNCATE).
        with connection.cursor() as cursor:
            # The test's transaction holds deferred foreign-key checks; TRUNCATE refuses to run
            # with those pending, so check them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with (
            pytest.raises((InternalError, ProgrammingError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("TRUNCATE tenants_auditevent")
        assert AuditEvent.objects.exists()
