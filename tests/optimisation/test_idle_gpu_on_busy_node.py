"""The idle-GPU-on-a-busy-node detector, on real per-GPU samples rolled up by the telemetry
services: it names the GPU, prices its share of the node, keeps quiet when the node as a whole
is idle or not busy, honours its thresholds, and never reads another tenant's GPUs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from operations.optimisation.models import RecommendationKind, SubjectType
from tests.inventory.estate import make_cluster, make_gpu_node
from tests.optimisation.helpers import by_kind, feed_gpu, hours_between, scan, this_hour
from tests.telemetry.gpu_samples import make_node_gpus, store_gpu_hours

pytestmark = pytest.mark.django_db

IDLE_ON_BUSY = RecommendationKind.IDLE_GPU_ON_BUSY_NODE
UTIL = "gpu_utilization"


def window_hours(hours: int = 72) -> list[dt.datetime]:
    end = this_hour()
    return list(hours_between(end - dt.timedelta(hours=hours), end))


def node_with_gpus(tenant, hostname: str, utilisation: dict[int, object], **fields):
    """A node whose GPU ``index`` runs at ``utilisation[index]`` (a number or hour → number)
    for the last 72 hours, and whose aggregate is their mean."""
    node = make_gpu_node(
        tenant, hostname=hostname, gpu_count=len(utilisation), gpu_uuids=[], **fields
    )
    gpus = make_node_gpus(tenant, node)
    hours = window_hours()
    for gpu in gpus:
        store_gpu_hours(tenant, gpu, UTIL, hours, utilisation[gpu.index])

    def mean(hour):
        values = [v(hour) if callable(v) else v for v in utilisation.values()]
        return sum(values) / len(values)

    feed_gpu(tenant, node, utilisation=mean)
    return node, gpus


def test_an_idle_gpu_on_a_busy_node_is_a_finding_naming_the_gpu(tenant_a):
    node, gpus = node_with_gpus(
        tenant_a, "a-busy", {0: 80, 1: 75, 2: lambda hour: 1 + hour.hour % 2, 3: 85}
    )
    with_uuid = gpus[2]
    summary = scan(tenant_a)

    [rec] = by_kind(tenant_a, IDLE_ON_BUSY)
    assert summary["found"] == 1  # the node is busy: no idle-node or right-size finding
    assert (rec.subject_type, rec.subject_id, rec.subject_key) == (
        SubjectType.GPU,
        with_uuid.pk,
        f"gpu:{with_uuid.pk}",
    )
    assert rec.subject_label == "a-busy GPU 2"
    assert rec.title == (
        "a-busy GPU 2 is idle (1.5% mean over 72 h) while its 3 other GPUs average 80%: "
        "schedule work on it or release it"
    )
    assert rec.estimated_monthly_saving == Decimal("1551.25")  # 8.5 × 730 / 4
    ev = rec.evidence
    assert ev["gpu"] == {"id": with_uuid.pk, "index": 2, "uuid": "", "mig_instance": ""}
    assert ev["compute"] == {"id": node.pk, "hostname": "a-busy"}
    assert ev["utilisation_mean"] == pytest.approx(1.5, abs=0.05)
    assert ev["utilisation_peak_hour"] == 2.0
    assert [(o["index"], o["utilisation_mean"]) for o in ev["other_gpus"]] == [
        (0, 80.0),
        (1, 75.0),
        (3, 85.0),
    ]
    assert ev["other_gpus_mean"] == 80.0
    assert ev["thresholds"] == {
        "gpu_idle_utilisation": 5.0,
        "gpu_idle_peak": 15.0,
        "busy_node_utilisation": 50.0,
        "min_coverage": 0.8,
    }
    # The whole-node detector is unchanged: the node is not idle.
    assert by_kind(tenant_a, RecommendationKind.IDLE_GPU) == []


def test_two_idle_gpus_are_two_findings(tenant_a):
    node_with_gpus(tenant_a, "a-two-idle", {0: 90, 1: 2, 2: 90, 3: 90, 4: 3, 5: 90})
    scan(tenant_a)
    labels = sorted(rec.subject_label for rec in by_kind(tenant_a, IDLE_ON_BUSY))
    assert labels == ["a-two-idle GPU 1", "a-two-idle GPU 4"]


@pytest.mark.parametrize(
    ("utilisation", "overrides"),
    [
        ({0: 2, 1: 1, 2: 3, 3: 2}, {}),  # the whole node is idle: the idle-node finding
        ({0: 30, 1: 2, 2: 40, 3: 35}, {}),  # the others are not busy
        ({0: 80, 1: lambda hour: 40 if hour.hour == 3 else 1, 2: 80, 3: 80}, {}),  # one busy hour
        ({0: 80, 1: 8, 2: 80, 3: 80}, {}),  # above the idle mean
        ({0: 80, 1: 2, 2: 80, 3: 80}, {"busy_node_utilisation": 90}),
        ({0: 80, 1: 2, 2: 80, 3: 80}, {"gpu_idle_utilisation": 1}),
    ],
)
def test_quiet_unless_one_gpu_is_idle_while_the_others_are_busy(tenant_a, utilisation, overrides):
    node_with_gpus(tenant_a, "a-node", utilisation)
    scan(tenant_a, **overrides)
    assert by_kind(tenant_a, IDLE_ON_BUSY) == []


def test_a_gpu_with_too_little_data_or_on_an_inactive_node_is_not_judged(tenant_a):
    node = make_gpu_node(tenant_a, hostname="a-recent", gpu_count=2, gpu_uuids=[])
    idle, busy = make_node_gpus(tenant_a, node)
    store_gpu_hours(tenant_a, idle, UTIL, window_hours(20), 1)
    store_gpu_hours(tenant_a, busy, UTIL, window_hours(), 90)
    node_with_gpus(tenant_a, "a-retired", {0: 90, 1: 1}, status="retired")
    scan(tenant_a)
    assert by_kind(tenant_a, IDLE_ON_BUSY) == []


def test_thresholds_come_from_settings(tenant_a, settings):
    from operations.optimisation.conf import default_thresholds

    settings.OPTIMISATION_BUSY_NODE_UTILISATION = 95.0
    assert default_thresholds().busy_node_utilisation == 95.0


def test_a_scan_never_reads_another_tenants_gpus(tenant_a, tenant_b):
    node_with_gpus(tenant_b, "b-busy", {0: 80, 1: 1, 2: 80, 3: 80})
    node_with_gpus(tenant_a, "a-busy", {0: 80, 1: 80})
    assert scan(tenant_a)["found"] == 0
    assert by_kind(tenant_a, IDLE_ON_BUSY) == []
    scan(tenant_b)
    assert [rec.subject_label for rec in by_kind(tenant_b, IDLE_ON_BUSY)] == ["b-busy GPU 1"]
    assert by_kind(tenant_a, IDLE_ON_BUSY) == []


BOOKKEEPING = ("SELECT set_config", "SELECT pg_advisory_xact_lock")


def test_per_gpu_figures_cost_one_more_query_whatever_the_number_of_nodes(tenant_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    cluster = make_cluster(tenant_a, hostname="a-pool")
    counts, made = [], 0
    for size in (1, 4):
        while made < size:
            node_with_gpus(tenant_a, f"a-busy-{made}", {0: 60, 1: 70}, cluster=cluster)
            made += 1
        with CaptureQueriesContext(connection) as captured:
            assert scan(tenant_a)["found"] == 0
        counts.append(
            sum(
                1
                for q in captured.captured_queries
                if q["sql"].startswith("SELECT") and not q["sql"].startswith(BOOKKEEPING)
            )
        )
    # test_detectors' six reads, and the GPUs that report their own series.
    assert counts == [7, 7]


def test_its_page_draws_the_gpu_beside_its_node_s_other_gpus(client, tenant_a, tenant_b):
    import html

    from django.urls import reverse

    from tenants.models import ServicePlan, TenantRole
    from tests.factories import make_member
    from tests.optimisation.test_evidence_page import facts, svgs

    node_with_gpus(tenant_a, "a-busy", {0: 80, 1: 75, 2: 1, 3: 85})
    scan(tenant_a)
    [rec] = by_kind(tenant_a, IDLE_ON_BUSY)
    ServicePlan.objects.filter(tenant=tenant_a).update(timezone="UTC")
    client.force_login(make_member(tenant_a, TenantRole.VIEWER, username="acme-viewer"))
    url = reverse("portal_recommendations:detail", kwargs={"slug": tenant_a.slug, "pk": rec.pk})
    response = client.get(url)
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    (chart,) = svgs(text)
    assert "a-busy GPU 2" in chart
    assert "Other 3 GPUs (mean)" in chart
    shown = facts(text)
    assert shown["Mean utilisation"] == "1 %"
    assert shown["Other GPUs of the node"] == "80 % mean"
    assert shown["Saving"] == "hourly cost × 730 h × 1/4 (this GPU's share of the node)"
    # Another tenant's finding about its GPU is the same 404 as a missing one.
    node_with_gpus(tenant_b, "b-busy", {0: 80, 1: 1})
    scan(tenant_b)
    [foreign] = by_kind(tenant_b, IDLE_ON_BUSY)
    for pk in (foreign.pk, 987654):
        missing = reverse("portal_recommendations:detail", kwargs={"slug": tenant_a.slug, "pk": pk})
        assert client.get(missing).status_code == 404
