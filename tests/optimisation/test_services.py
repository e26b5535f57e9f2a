"""The scan's refresh rules, the lifecycle, and the tenant boundary of the scan itself."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from operations.inventory import services as inventory
from operations.optimisation import services
from operations.optimisation.models import Recommendation, RecommendationKind
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import make_member
from tests.inventory.estate import make_gpu_node
from tests.optimisation.helpers import by_kind, feed_gpu, recommendations, scan

pytestmark = pytest.mark.django_db
IDLE = RecommendationKind.IDLE_GPU


@pytest.fixture
def idle_node(tenant_a):
    node = make_gpu_node(tenant_a, hostname="a-idle", hourly_cost="8.5000")
    feed_gpu(tenant_a, node, utilisation=2)
    return node


def _set(tenant, node, **fields):
    with tenant_scope(tenant.id):
        return inventory.compute_update(tenant=tenant, compute=node, **fields)


def _act(tenant, name, rec, **kwargs):
    with tenant_scope(tenant.id):
        return getattr(services, f"recommendation_{name}")(
            tenant=tenant, recommendation=rec, **kwargs
        )


def _one(tenant) -> Recommendation:
    [rec] = by_kind(tenant, IDLE)
    return rec


# --- Refresh ------------------------------------------------------------------------------------


def test_a_rerun_refreshes_instead_of_duplicating_and_keeps_the_status(tenant_a, idle_node):
    first = scan(tenant_a)
    rec = _one(tenant_a)
    rec = _act(tenant_a, "accept", rec)
    second = scan(tenant_a)

    again = _one(tenant_a)
    assert (first["created"], second["created"], second["refreshed"]) == (1, 0, 1)
    assert again.pk == rec.pk
    assert again.status == "accepted"
    assert again.first_seen == rec.first_seen
    assert again.last_seen > rec.last_seen
    assert len(recommendations(tenant_a)) == 1


def test_an_open_one_is_superseded_when_the_condition_clears_and_reopens_when_it_returns(
    tenant_a, idle_node
):
    scan(tenant_a)
    _set(tenant_a, idle_node, status="maintenance")
    assert scan(tenant_a)["superseded"] == 1
    rec = _one(tenant_a)
    assert rec.status == "superseded"
    assert rec.resolved_at is not None

    _set(tenant_a, idle_node, status="active")
    assert scan(tenant_a)["reopened"] == 1
    rec = _one(tenant_a)
    assert (rec.status, rec.resolved_at) == ("open", None)
    with tenant_scope(tenant_a.id):
        reasons = [
            event.changes["reason"][1]
            for event in AuditEvent.objects.filter(
                object_type="optimisation.Recommendation", object_id=str(rec.pk), action="update"
            ).order_by("id")
        ]
    assert reasons == ["the condition cleared", "the condition is back"]


def test_a_dismissed_one_stays_dismissed_unless_the_saving_grows_by_half(tenant_a, idle_node):
    scan(tenant_a)
    _act(tenant_a, "dismiss", _one(tenant_a), reason="kept warm for the quarter close")

    _set(tenant_a, idle_node, hourly_cost="9.0000")  # +6 %: not material
    scan(tenant_a)
    rec = _one(tenant_a)
    assert rec.status == "dismissed"
    assert rec.estimated_monthly_saving == Decimal("6570.00")  # evidence refreshed all the same
    assert rec.dismissed_reason == "kept warm for the quarter close"

    _set(tenant_a, idle_node, hourly_cost="20.0000")  # well over +50 %
    assert scan(tenant_a)["reopened"] == 1
    assert _one(tenant_a).status == "open"


def test_an_implemented_one_reopens_only_after_its_condition_cleared_and_came_back(
    tenant_a, idle_node
):
    scan(tenant_a)
    _act(tenant_a, "accept", _one(tenant_a))
    _act(tenant_a, "implement", _one(tenant_a))
    scan(tenant_a)  # the window still holds the idle hours: no reopening
    assert _one(tenant_a).status == "implemented"

    _set(tenant_a, idle_node, status="offline")
    scan(tenant_a)
    rec = _one(tenant_a)
    assert (rec.status, rec.resolved_at is not None) == ("implemented", True)

    _set(tenant_a, idle_node, status="active")
    scan(tenant_a)
    assert _one(tenant_a).status == "open"


# --- Lifecycle ----------------------------------------------------------------------------------


def test_lifecycle_records_who_and_when_and_audits(tenant_a, idle_node):
    user = make_member(tenant_a, username="acme-ops")
    scan(tenant_a)
    rec = _act(tenant_a, "accept", _one(tenant_a), user=user)
    assert (rec.status, rec.accepted_by_id, rec.accepted_by_label) == (
        "accepted",
        user.pk,
        "acme-ops",
    )
    rec = _act(tenant_a, "implement", rec, user=user)
    assert rec.status == "implemented"
    assert rec.implemented_at is not None
    with tenant_scope(tenant_a.id):
        statuses = [
            event.changes["status"]
            for event in AuditEvent.objects.filter(
                object_type="optimisation.Recommendation", object_id=str(rec.pk), action="update"
            ).order_by("id")
        ]
    assert statuses == [["open", "accepted"], ["accepted", "implemented"]]


@pytest.mark.parametrize(
    ("path", "action"),
    [
        ((), "implement"),  # open → implemented skips acceptance
        (("accept",), "accept"),
        (("accept", "implement"), "dismiss"),
        (("dismiss",), "accept"),
    ],
)
def test_refused_transitions_change_nothing(tenant_a, idle_node, path, action):
    scan(tenant_a)
    for step in path:
        kwargs = {"reason": "not now"} if step == "dismiss" else {}
        _act(tenant_a, step, _one(tenant_a), **kwargs)
    before = _one(tenant_a)
    kwargs = {"reason": "no"} if action == "dismiss" else {}
    with pytest.raises(services.TransitionRefused, match=f"Cannot {action}"):
        _act(tenant_a, action, before, **kwargs)
    after = _one(tenant_a)
    assert (after.status, after.updated_at) == (before.status, before.updated_at)


def test_dismiss_needs_a_reason(tenant_a, idle_node):
    scan(tenant_a)
    with pytest.raises(ValidationError) as error:
        _act(tenant_a, "dismiss", _one(tenant_a), reason="   ")
    assert "reason" in error.value.message_dict
    assert _one(tenant_a).status == "open"


# --- The tenant boundary ------------------------------------------------------------------------


def test_a_scan_reads_and_writes_only_its_own_tenant(tenant_a, tenant_b):
    # Same hostname in both tenants: A's node is busy, B's is idle.
    a_node = make_gpu_node(tenant_a, hostname="gpu-01")
    b_node = make_gpu_node(tenant_b, hostname="gpu-01", hourly_cost="3.0000")
    feed_gpu(tenant_a, a_node, utilisation=70)
    feed_gpu(tenant_b, b_node, utilisation=1)
    scan(tenant_b)
    [b_rec] = by_kind(tenant_b, IDLE)

    summary = scan(tenant_a)

    assert summary["found"] == 0
    assert recommendations(tenant_a) == []
    # A's scan neither superseded nor touched B's recommendation.
    [b_again] = by_kind(tenant_b, IDLE)
    assert (b_again.status, b_again.refreshed_at) == ("open", b_rec.refreshed_at)
    assert b_again.subject_id == b_node.pk
    assert b_again.evidence["utilisation_mean"] == 1.0


def test_services_refuse_to_run_outside_the_tenants_own_scope(tenant_a, tenant_b):
    with pytest.raises(RuntimeError, match="own scope"), tenant_scope(tenant_a.id, tenant_b.id):
        services.optimisation_run_for_tenant(tenant=tenant_a)
    with pytest.raises(RuntimeError, match="own scope"), tenant_scope(tenant_b.id):
        services.optimisation_run_for_tenant(tenant=tenant_a)
