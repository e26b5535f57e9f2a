"""Pilot → production gates: each criterion, the refusal (409 through the API, the service's
refusal, the import's row error), the msp_admin override (audited, shown with the gate), who may
override, and isolation of the gate routes."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError as ApiValidationError

from operations.incidents import services as incident_services
from operations.inventory import services as inventory
from operations.inventory.bulk import inventory_import
from operations.inventory.models import AISystem, Stage
from operations.readiness import gates
from operations.readiness.models import GateOverride
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.incidents.factories import make_incident
from tests.inventory import estate
from tests.isolation import MISSING_ID
from tests.readiness.gate_builders import (
    failing_keys,
    grant_override,
    make_capacity_forecast,
    make_finding,
    make_utilisation,
    ready_pilot,
    report_of,
)

pytestmark = pytest.mark.django_db


def api(tenant) -> str:
    return f"/api/v1/tenants/{tenant.slug}"


def stage_of(tenant, system) -> str:
    with tenant_scope(tenant.id):
        return AISystem.objects.get(pk=system.pk).stage


def change(tenant, system, **fields):
    with tenant_scope(tenant.id):
        system.refresh_from_db()
        return inventory.ai_system_update(tenant=tenant, ai_system=system, **fields)


# --- The criteria --------------------------------------------------------------------------------


def test_the_criteria_file_and_the_evaluators_name_the_same_keys():
    keys = [definition.key for definition in gates.gate_definitions().criteria]
    assert keys == list(gates.EVALUATORS)
    assert {d.applies_when for d in gates.gate_definitions().criteria} <= set(gates.APPLIES_WHEN)


def test_a_ready_pilot_passes_every_gate(tenant_a):
    system = ready_pilot(tenant_a)
    report = report_of(tenant_a, system)
    assert report.passed, report.failing
    assert report.status == "ready"
    by_key = {row["key"]: row for row in report.criteria}
    assert by_key["fria_completed"]["applies"] is False  # limited risk
    deployment = system.gate_parts["deployment"]
    assert by_key["deployment_operable"]["links"] == [
        {"label": deployment.name, "kind": "deployment", "id": deployment.pk}
    ]
    assert "no utilisation data" in by_key["capacity_headroom"]["detail"]


@pytest.mark.parametrize(
    ("breakage", "key"),
    [
        ({"risk_tier": "unclassified"}, "risk_tier_classified"),
        ({"risk_tier": "prohibited"}, "risk_tier_classified"),
        ({"risk_tier": "high"}, "fria_completed"),
        ({"business_owner": ""}, "accountable_owner"),
    ],
)
def test_a_field_of_the_system_fails_its_criterion(tenant_a, breakage, key):
    system = ready_pilot(tenant_a)
    change(tenant_a, system, **breakage)
    assert failing_keys(tenant_a, system) == [key]


def test_a_high_risk_system_with_a_fria_passes(tenant_a):
    system = ready_pilot(tenant_a, risk_tier="high", fria_completed_at=dt.date(2026, 11, 2))
    assert failing_keys(tenant_a, system) == []


def test_datasets_need_a_link_provenance_and_residency(tenant_a):
    bare = ready_pilot(tenant_a)
    with tenant_scope(tenant_a.id):
        for usage in bare.dataset_usage.all():
            inventory.ai_system_dataset_delete(tenant=tenant_a, ai_system_dataset=usage)
    assert failing_keys(tenant_a, bare) == ["datasets_documented"]

    vague = ready_pilot(tenant_a)
    undocumented = estate.make_dataset(tenant_a, provenance="", residency_country="")
    estate.make_usage(tenant_a, ai_system=vague, dataset=undocumented)
    report = report_of(tenant_a, vague)
    assert [row["key"] for row in report.failing] == ["datasets_documented"]
    criterion = report.failing[0]
    assert "no provenance or residency" in criterion["detail"]
    assert criterion["links"] == [
        {"label": undocumented.name, "kind": "dataset", "id": undocumented.pk}
    ]


@pytest.mark.parametrize(
    "breakage",
    [{"monitoring_enabled": False}, {"runbook_url": ""}, {"environment": "development"}],
)
def test_the_deployment_must_be_monitored_with_a_runbook(tenant_a, breakage):
    system = ready_pilot(tenant_a)
    with tenant_scope(tenant_a.id):
        deployment = system.gate_parts["deployment"]
        deployment.refresh_from_db()
        inventory.deployment_update(tenant=tenant_a, deployment=deployment, **breakage)
    assert failing_keys(tenant_a, system) == ["deployment_operable"]


def test_the_deployment_needs_an_alert_rule_in_force_that_covers_it(tenant_a, tenant_b):
    system = ready_pilot(tenant_a, rule=False)
    ready_pilot(tenant_b)  # tenant B's rule covers nothing of tenant A
    report = report_of(tenant_a, system)
    assert [row["key"] for row in report.failing] == ["deployment_operable"]
    assert "no alert rule in force" in report.failing[0]["detail"]


def test_an_open_sev2_incident_on_a_deployment_blocks_until_resolved(tenant_a):
    system = ready_pilot(tenant_a)
    deployment = system.gate_parts["deployment"]
    incident = make_incident(tenant_a, severity="SEV2", deployments=[deployment])
    make_incident(tenant_a, severity="SEV3", ai_systems=[system])  # minor: does not block
    report = report_of(tenant_a, system)
    assert [row["key"] for row in report.failing] == ["no_major_incident"]
    assert report.failing[0]["links"] == [
        {"label": incident.reference, "kind": "incident", "id": incident.pk}
    ]
    with tenant_scope(tenant_a.id):
        incident_services.incident_resolve(tenant=tenant_a, incident=incident)
    assert failing_keys(tenant_a, system) == []


def test_a_failing_critical_finding_blocks_not_a_minor_or_passing_one(tenant_a):
    system = ready_pilot(tenant_a)
    make_finding(tenant_a, subject_type="ai_system", subject_id=system.pk, severity="high")
    make_finding(
        tenant_a, subject_type="ai_system", subject_id=system.pk, status="pass", check_code="x.y"
    )
    assert failing_keys(tenant_a, system) == []
    finding = make_finding(
        tenant_a,
        subject_type="deployment",
        subject_id=system.gate_parts["deployment"].pk,
        check_code="eu_ai_act.logging",
    )
    report = report_of(tenant_a, system)
    assert [row["key"] for row in report.failing] == ["no_critical_finding"]
    assert report.failing[0]["links"][0]["id"] == finding.pk


def test_capacity_needs_no_forecast_and_utilisation_under_the_limit(tenant_a):
    system = ready_pilot(tenant_a)
    node = system.gate_parts["node"]
    make_utilisation(tenant_a, node, [50.0] * 100)
    report = report_of(tenant_a, system)
    assert report.passed
    assert "p95 GPU utilisation 50%" in report.criteria[-1]["detail"]

    make_utilisation(tenant_a, node, [97.0] * 20, now=timezone.now() - dt.timedelta(hours=100))
    assert failing_keys(tenant_a, system) == ["capacity_headroom"]


def test_a_capacity_forecast_on_the_nodes_cluster_blocks(tenant_a):
    cluster = estate.make_cluster(tenant_a)
    system = ready_pilot(tenant_a)
    with tenant_scope(tenant_a.id):
        node = system.gate_parts["node"]
        node.refresh_from_db()
        inventory.compute_update(tenant=tenant_a, compute=node, cluster=cluster)
    forecast = make_capacity_forecast(tenant_a, cluster)
    report = report_of(tenant_a, system)
    assert [row["key"] for row in report.failing] == ["capacity_headroom"]
    assert report.failing[0]["links"][0] == {
        "label": cluster.hostname,
        "kind": "recommendation",
        "id": forecast.pk,
    }


# --- The refusal ---------------------------------------------------------------------------------


def blocked_pilot(tenant):
    """A pilot failing two gates for different reasons: no FRIA, and an open SEV2."""
    system = ready_pilot(tenant, risk_tier="high")
    make_incident(tenant, severity="SEV2", ai_systems=[system])
    return system


def test_the_transition_is_refused_with_409_and_the_failing_criteria(tenant_a, admin_a):
    system = blocked_pilot(tenant_a)
    response = admin_a.client.post(
        f"{api(tenant_a)}/ai-systems/{system.pk}/transition", {"stage": "production"}
    )
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "stage_change_refused"
    assert "2 readiness gates fail" in error["message"]
    assert set(error["fields"]) == {"gates.fria_completed", "gates.no_major_incident"}
    assert stage_of(tenant_a, system) == Stage.PILOT
    assert not AuditEvent.objects.filter(object_id=str(system.pk), action="transition").exists()


def test_a_patch_of_the_stage_is_refused_the_same_way(tenant_a, admin_a):
    system = blocked_pilot(tenant_a)
    response = admin_a.client.patch(
        f"{api(tenant_a)}/ai-systems/{system.pk}/", {"stage": "production"}
    )
    assert response.status_code == 409, response.content
    assert set(response.json()["error"]["fields"]) == {
        "gates.fria_completed",
        "gates.no_major_incident",
    }
    assert stage_of(tenant_a, system) == Stage.PILOT


def test_the_services_refuse_and_say_what_fails(tenant_a):
    system = blocked_pilot(tenant_a)
    for move in (
        lambda s: inventory.ai_system_transition(tenant=tenant_a, ai_system=s, stage="production"),
        lambda s: inventory.ai_system_update(tenant=tenant_a, ai_system=s, stage="production"),
    ):
        with tenant_scope(tenant_a.id), pytest.raises(inventory.StageChangeRefused) as refused:
            move(AISystem.objects.get(pk=system.pk))
        assert set(refused.value.failing) == {"gates.fria_completed", "gates.no_major_incident"}
    assert stage_of(tenant_a, system) == Stage.PILOT


def test_a_patch_that_fixes_a_gate_with_the_move_passes(tenant_a, admin_a):
    system = ready_pilot(tenant_a, risk_tier="high")  # no FRIA yet
    response = admin_a.client.patch(
        f"{api(tenant_a)}/ai-systems/{system.pk}/",
        {"stage": "production", "fria_completed_at": "2026-11-30"},
    )
    assert response.status_code == 200, response.content
    assert stage_of(tenant_a, system) == Stage.PRODUCTION


def test_the_bulk_import_refuses_the_row(tenant_a):
    system = blocked_pilot(tenant_a)
    document = {"ai_systems": [{"name": system.name, "stage": "production"}]}
    with tenant_scope(tenant_a.id), pytest.raises(ApiValidationError) as refused:
        inventory_import(tenant=tenant_a, document=document)
    assert "cannot move to production" in str(refused.value.detail["ai_systems"][0]["stage"][0])
    assert stage_of(tenant_a, system) == Stage.PILOT


def test_other_moves_are_not_gated(tenant_a, admin_a):
    system = blocked_pilot(tenant_a)
    response = admin_a.client.post(
        f"{api(tenant_a)}/ai-systems/{system.pk}/transition", {"stage": "proposed"}
    )
    assert response.status_code == 200
    # Registering a system straight into production is not a move: the estate predates us.
    created = admin_a.client.post(
        f"{api(tenant_a)}/ai-systems/", {"name": "Legacy scoring", "stage": "production"}
    )
    assert created.status_code == 201, created.content


def test_a_ready_pilot_moves_and_its_stage_is_dated(tenant_a, admin_a):
    system = ready_pilot(tenant_a)
    before = timezone.now()
    response = admin_a.client.post(
        f"{api(tenant_a)}/ai-systems/{system.pk}/transition", {"stage": "production"}
    )
    assert response.status_code == 200, response.content
    with tenant_scope(tenant_a.id):
        moved = AISystem.objects.get(pk=system.pk)
    assert moved.stage == Stage.PRODUCTION
    assert moved.stage_changed_at >= before


# --- The override --------------------------------------------------------------------------------


def override_url(tenant, system) -> str:
    return f"{api(tenant)}/ai-systems/{system.pk}/gates/override"


def test_an_msp_admin_overrides_with_a_reason_audited_and_the_move_passes(
    tenant_a, msp_admin, admin_a
):
    system = blocked_pilot(tenant_a)
    response = msp_admin.client.post(
        override_url(tenant_a, system), {"reason": "Launch approved by the risk committee."}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "overridden"
    assert body["cleared"] is True
    assert body["passed"] is False
    assert body["override"]["reason"] == "Launch approved by the risk committee."
    assert body["override"]["granted_by"] == msp_admin.user.username
    assert body["override"]["in_force"] is True
    assert {row["key"] for row in body["override"]["failing_criteria"]} == {
        "fria_completed",
        "no_major_incident",
    }
    with tenant_scope(tenant_a.id):
        override = GateOverride.objects.get(ai_system=system)
    event = AuditEvent.objects.get(object_type="readiness.GateOverride", object_id=str(override.pk))
    assert event.tenant_id == tenant_a.id
    assert event.action == "create"
    assert event.actor_user_id == msp_admin.user.pk
    assert event.changes["reason"] == [None, "Launch approved by the risk committee."]

    # The override is shown with the gate, and the move now passes.
    shown = admin_a.client.get(f"{api(tenant_a)}/ai-systems/{system.pk}/gates")
    assert shown.json()["override"]["reason"] == "Launch approved by the risk committee."
    moved = admin_a.client.post(
        f"{api(tenant_a)}/ai-systems/{system.pk}/transition", {"stage": "production"}
    )
    assert moved.status_code == 200, moved.content


def test_an_override_covers_only_what_failed_when_it_was_granted(tenant_a):
    system = ready_pilot(tenant_a, risk_tier="high")  # no FRIA
    grant_override(tenant_a, system)
    make_incident(tenant_a, severity="SEV1", ai_systems=[system])
    report = report_of(tenant_a, system)
    assert report.status == "blocked"
    assert not report.override_in_force
    with tenant_scope(tenant_a.id), pytest.raises(inventory.StageChangeRefused):
        inventory.ai_system_transition(
            tenant=tenant_a, ai_system=AISystem.objects.get(pk=system.pk), stage="production"
        )


def test_an_override_from_an_earlier_pilot_does_not_carry_over(tenant_a):
    system = ready_pilot(tenant_a, risk_tier="high")
    grant_override(tenant_a, system)
    change(tenant_a, system, stage="proposed")
    change(tenant_a, system, stage="pilot")
    report = report_of(tenant_a, system)
    assert report.override is not None
    assert not report.override_in_force
    assert report.status == "blocked"


@pytest.mark.parametrize("caller", ["admin_a", "engineer_a", "analyst_a", "member_a"])
def test_only_an_msp_admin_may_override(tenant_a, caller, request):
    actor = request.getfixturevalue(caller)
    system = blocked_pilot(tenant_a)
    response = actor.client.post(override_url(tenant_a, system), {"reason": "Ship it."})
    assert response.status_code == 403, response.content
    with tenant_scope(tenant_a.id):
        assert not GateOverride.objects.exists()
    assert response.json()["error"]["code"] == "permission_denied"


def test_the_service_refuses_a_non_admin(tenant_a, engineer_a):
    system = blocked_pilot(tenant_a)
    with tenant_scope(tenant_a.id), pytest.raises(gates.PermissionDenied):
        gates.ai_system_gate_override(
            tenant=tenant_a, ai_system=system, user=engineer_a.user, reason="Ship it."
        )


@pytest.mark.parametrize(
    ("setup", "body", "field"),
    [
        ("blocked", {"reason": "   "}, "reason"),
        ("blocked", {}, "reason"),
        ("ready", {"reason": "Why not."}, "non_field_errors"),
        ("proposed", {"reason": "Why not."}, "stage"),
    ],
)
def test_an_override_needs_a_reason_and_a_failing_pilot(tenant_a, msp_admin, setup, body, field):
    system = {
        "blocked": blocked_pilot,
        "ready": ready_pilot,
        "proposed": lambda t: ready_pilot(t, stage="proposed", risk_tier="high"),
    }[setup](tenant_a)
    response = msp_admin.client.post(override_url(tenant_a, system), body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"].get("fields", {}) or field == "non_field_errors"
    with tenant_scope(tenant_a.id):
        assert not GateOverride.objects.exists()


# --- Isolation -----------------------------------------------------------------------------------


def test_gate_routes_give_the_same_404_for_a_foreign_or_missing_system(
    tenant_a, tenant_b, msp_admin, admin_a
):
    foreign = blocked_pilot(tenant_b)
    # A token bound to tenant A: even an msp_admin reaches only A through it.
    from tests.conftest import Actor
    from tests.factories import make_token

    bound = Actor(msp_admin.user, make_token(msp_admin.user, tenant=tenant_a))
    for actor in (admin_a, bound):
        missing_get = actor.client.get(f"{api(tenant_a)}/ai-systems/{MISSING_ID}/gates")
        foreign_get = actor.client.get(f"{api(tenant_a)}/ai-systems/{foreign.pk}/gates")
        other_url = actor.client.get(f"{api(tenant_b)}/ai-systems/{foreign.pk}/gates")
        assert missing_get.status_code == foreign_get.status_code == other_url.status_code == 404
        assert missing_get.content == foreign_get.content == other_url.content
    for actor in (bound,):
        missing = actor.client.post(override_url_for(tenant_a, MISSING_ID), {"reason": "x"})
        foreign_post = actor.client.post(override_url_for(tenant_a, foreign.pk), {"reason": "x"})
        other = actor.client.post(override_url_for(tenant_b, foreign.pk), {"reason": "x"})
        assert missing.status_code == foreign_post.status_code == other.status_code == 404
        assert missing.content == foreign_post.content == other.content
    with tenant_scope(tenant_b.id):
        assert not GateOverride.objects.exists()


def override_url_for(tenant, pk) -> str:
    return f"{api(tenant)}/ai-systems/{pk}/gates/override"


def test_the_gates_of_an_own_system_are_readable_by_its_users(tenant_a, viewer_a):
    system = blocked_pilot(tenant_a)
    response = viewer_a.client.get(f"{api(tenant_a)}/ai-systems/{system.pk}/gates")
    assert response.status_code == 200
    body = response.json()
    assert body["ai_system"]["id"] == system.pk
    assert body["status"] == "blocked"
    assert body["ai_system"]["days_in_pilot"] == 0
    assert [row["key"] for row in body["criteria"]] == list(gates.EVALUATORS)


# --- Demo data ---------------------------------------------------------------------------------


def test_the_demo_blocks_two_acme_pilots_for_different_reasons_and_overrides_one(tenant_a):
    from operations.inventory.demo import seed_inventory
    from operations.readiness.demo_gates import seed_gates
    from tenants.models import MspRole
    from tests.factories import make_staff

    seed_inventory(tenant_a, profile="finance")
    admin = make_staff(role=MspRole.ADMIN, username="demo-admin")
    assert seed_gates(tenant_a, granted_by=admin) == {"pilots": 2, "incidents": 1, "overrides": 1}
    with tenant_scope(tenant_a.id):
        systems = {system.name: system for system in AISystem.objects.filter(stage="pilot")}
    reports = {name: report_of(tenant_a, system) for name, system in systems.items()}
    mortgage = reports["Mortgage pre-approval assistant"]
    advisor = reports["Advisor copilot"]
    assert mortgage.status == advisor.status == "blocked"
    assert "fria_completed" in [row["key"] for row in mortgage.failing]
    assert "no_major_incident" in [row["key"] for row in advisor.failing]
    assert "no_major_incident" not in [row["key"] for row in mortgage.failing]
    reader = reports["KYC document reader"]
    assert reader.status == "overridden"
    assert reader.override.granted_by == admin
    # A second run writes nothing.
    assert seed_gates(tenant_a, granted_by=admin) == {"pilots": 0, "incidents": 0, "overrides": 0}


# --- stage_changed_at --------------------------------------------------------------------------


def test_the_backfill_takes_the_last_audited_stage_change_else_creation(tenant_a, tenant_b):
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    backfill = importlib.import_module(
        "operations.inventory.migrations.0005_ai_system_stage_changed_at"
    ).backfill
    moved = ready_pilot(tenant_a)
    with tenant_scope(tenant_a.id):
        inventory.ai_system_transition(tenant=tenant_a, ai_system=moved, stage="production")
    last_move = AuditEvent.objects.filter(object_id=str(moved.pk), action="transition").get()
    with tenant_scope(tenant_b.id):
        unaudited = AISystem.objects.create(tenant=tenant_b, name="Imported by hand")
    long_ago = timezone.now() - dt.timedelta(days=999)
    with tenant_scope(tenant_a.id, tenant_b.id):
        AISystem.objects.update(stage_changed_at=long_ago)
        backfill(apps, SimpleNamespace(connection=connection))
        assert AISystem.objects.get(pk=moved.pk).stage_changed_at == last_move.occurred_at
        stored = AISystem.objects.get(pk=unaudited.pk)
        assert stored.stage_changed_at == stored.created_at
