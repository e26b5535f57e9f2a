"""Forwarding ingest on a real VictoriaMetrics: the dcgm routes pass the body on as is, under
the authenticated tenant's label, whatever labels the payload carries; Groundwork reads the
forwarded series by their dcgm-exporter labels exactly as it reads what it parsed itself on the
built-in store; the GPU job learns their GPUs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from operations.inventory.models import GpuDevice
from operations.telemetry.backends.dcgm_read import FAMILY_OF_METRIC
from operations.telemetry.forwarding import telemetry_gpus_discover
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from operations.telemetry.models import TelemetryRollup
from operations.telemetry.storage import sample_store
from operations.telemetry.tenant_label import check_tenant_label_settings
from tenants.scoping import tenant_scope
from tests.telemetry import test_prometheus
from tests.telemetry.helpers import url
from tests.telemetry.remote_write_payloads import (
    from_exposition,
    remote_write,
    snappy,
    write_request,
)
from tests.telemetry.test_prometheus import SCRAPE, push

pytestmark = pytest.mark.django_db
#: A's two GPU hosts (one seen by its pod's hostname), and B's namesake of the first.
hosts = test_prometheus.hosts


def hostile_lines(tenant_b, foreign_id: int) -> str:
    """Text lines that try to land in B's label space (or pose as Groundwork's own series)."""
    b = tenant_b.id
    return "\n".join(
        [
            f'DCGM_FI_DEV_GPU_UTIL{{tenant="{b}",Hostname="acme-gpu-sat-01",gpu="0"}} 77',
            'DCGM_FI_DEV_GPU_UTIL{tenant="",Hostname="acme-gpu-sat-01",gpu="1"} 77',
            f'DCGM_FI_DEV_GPU_UTIL{{Hostname="x\\"}}",tenant="{b}"}} 77',
            'DCGM_FI_DEV_GPU_UTIL{tenant=~".*",Hostname="h"} 77',
            f'DCGM_FI_DEV_GPU_UTIL{{groundwork="elsewhere",tenant="{b}"}} 77',
            f'gpu_utilization{{tenant="{b}",kind="compute",resource_id="{foreign_id}"}} 77',
            f'{{__name__="gpu_utilization",tenant="{b}"}} 77',
            f'DCGM_FI_DEV_GPU_UTIL{{tenant="{b}",tenant="{b}"}} 77',
            "{} 77",
            "",
        ]
    )


def hostile_series(tenant_b, foreign_id: int) -> list:
    moment_ms = int((timezone.now() - dt.timedelta(minutes=1)).timestamp() * 1000)
    b = str(tenant_b.id)
    return [
        ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "tenant": b, "Hostname": "h"}, [(77.0, moment_ms)]),
        ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "tenant": f"{b}|.*"}, [(77.0, moment_ms)]),
        ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "tenant": '"}'}, [(77.0, moment_ms)]),
        ({"__name__": "DCGM_FI_DEV_GPU_UTIL", "groundwork": "x", "tenant": b}, [(77.0, moment_ms)]),
        (
            {
                "__name__": "gpu_utilization",
                "tenant": b,
                "kind": "compute",
                "resource_id": str(foreign_id),
            },
            [(77.0, moment_ms)],
        ),
    ]


def assert_only_under(vm, settings, tenant_a, tenant_b):
    """Every series under this test's instance is A's (and marked forwarded); none is B's."""
    exported = vm.export(f'{{groundwork="{settings.TELEMETRY_INSTANCE}"}}')
    assert exported
    assert {line["metric"]["tenant"] for line in exported} == {str(tenant_a.id)}
    assert {line["metric"]["kind"] for line in exported} == {"scrape"}
    assert vm.export(f'{{tenant="{tenant_b.id}"}}') == []
    since = timezone.now() - dt.timedelta(days=1)
    with tenant_scope(tenant_b.id):
        assert sample_store().resources_reporting(tenant_id=tenant_b.id, since=since) == []


def test_a_scrape_cannot_write_into_another_tenants_labels(
    vm, settings, admin_a, tenant_a, tenant_b, estate
):
    ts = int((timezone.now() - dt.timedelta(minutes=1)).timestamp())
    response = push(
        admin_a, tenant_a, hostile_lines(tenant_b, estate["foreign"].pk), query=f"?ts={ts}"
    )
    assert response.status_code == 202, response.content
    assert response.content == b""
    assert_only_under(vm, settings, tenant_a, tenant_b)


def test_a_remote_write_cannot_write_into_another_tenants_labels(
    vm, settings, admin_a, tenant_a, tenant_b, estate
):
    body = snappy(write_request(hostile_series(tenant_b, estate["foreign"].pk)))
    response = remote_write(admin_a, tenant_a.slug, body)
    assert response.status_code == 204, response.content
    assert_only_under(vm, settings, tenant_a, tenant_b)


def test_forwarded_series_never_pose_as_groundworks_own(vm, admin_a, tenant_a, estate):
    node = estate["node"].pk
    text = f'gpu_utilization{{kind="compute",resource_id="{node}"}} 99\n'
    ts = int((timezone.now() - dt.timedelta(minutes=1)).timestamp())
    assert push(admin_a, tenant_a, text, query=f"?ts={ts}").status_code == 202
    with tenant_scope(tenant_a.id):
        reporting = sample_store().resources_reporting(
            tenant_id=tenant_a.id, since=timezone.now() - dt.timedelta(hours=1)
        )
    assert reporting == []


def test_a_body_victoria_metrics_refuses_is_a_400_in_the_error_format(vm, admin_a, tenant_a):
    response = remote_write(admin_a, tenant_a.slug, snappy(b"\xff\xff not a WriteRequest"))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["status"] == 400
    assert error["fields"]["body"][0].startswith("The telemetry store refused the body")


def test_remote_write_still_needs_snappy_protobuf(vm, admin_a, tenant_a):
    body = write_request(from_exposition(SCRAPE, 0))
    assert remote_write(admin_a, tenant_a.slug, body, HTTP_CONTENT_ENCODING="").status_code == 415
    response = remote_write(admin_a, tenant_a.slug, snappy(body), content_type="text/plain")
    assert response.status_code == 415
    assert push(admin_a, tenant_a, "x 1", CONTENT_TYPE="application/json").status_code in (
        202,
        415,
    )


def test_a_decompressed_size_over_the_limit_is_a_413_before_forwarding(
    vm, settings, admin_a, tenant_a
):
    body = snappy(write_request(from_exposition(SCRAPE, 0)))
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body) + 100  # the compressed body fits
    assert remote_write(admin_a, tenant_a.slug, body).status_code == 413


def test_the_ingest_token_is_required(vm, tenant_a, estate):
    from rest_framework.test import APIClient

    response = APIClient().post(url(tenant_a, "prometheus"), b"x 1", content_type="text/plain")
    assert response.status_code in (401, 403)


# --- Reading forwarded series as the built-in store reads parsed ones -------------------------


def _reads(tenant, moment: dt.datetime) -> dict:
    """Everything the store answers about the tenant's computes and GPUs around ``moment``."""
    store = sample_store()
    start, end = moment - dt.timedelta(minutes=5), moment + dt.timedelta(minutes=5)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant.id):
        gpus = sorted(GpuDevice.objects.filter(tenant=tenant).values_list("pk", flat=True))
        resources = [(ResourceKind.COMPUTE.value, pk) for pk in _computes(tenant)]
        resources += [(ResourceKind.GPU.value, pk) for pk in gpus]
        points, windows = {}, {}
        for code in FAMILY_OF_METRIC:
            for kind, pk in resources:
                found = store.series_points(
                    tenant_id=tenant.id,
                    kind=kind,
                    resource_id=pk,
                    metric=code,
                    start=start,
                    end=end,
                    limit=1000,
                )
                if found:
                    points[(kind, pk, code)] = [(ts, round(value, 6)) for ts, value in found]
            for kind in (ResourceKind.COMPUTE.value, ResourceKind.GPU.value):
                rows = store.window_stats(
                    tenant_id=tenant.id, kind=kind, metric=code, start=start, end=end
                )
                windows[(kind, code)] = [
                    (row[0], round(row[1], 6), round(row[2], 6), *row[3:]) for row in rows
                ]
        series = [(kind, pk, code) for kind, pk in resources for code in FAMILY_OF_METRIC]
        last = store.last_sample_times(tenant_id=tenant.id, series=series, since=start, until=end)
        reporting = store.resources_reporting(tenant_id=tenant.id, since=start)
        store.rollup_hour(tenant_id=tenant.id, hour=hour, now=timezone.now())
        rolled = sorted(
            (r.resource_kind, r.resource_id, r.metric, round(r.min_value, 6))
            + (round(r.max_value, 6), round(r.avg_value, 6), r.sample_count)
            for r in TelemetryRollup.objects.filter(tenant=tenant, bucket=hour)
        )
        TelemetryRollup.objects.filter(tenant=tenant).delete()
    return {
        "points": points,
        "windows": windows,
        "last": last,
        "reporting": reporting,
        "rollups": rolled,
    }


def _computes(tenant) -> list[int]:
    from operations.inventory.models import ComputeResource

    return sorted(ComputeResource.objects.filter(tenant=tenant).values_list("pk", flat=True))


def test_a_forwarded_scrape_reads_as_the_built_in_store_reads_it_parsed(
    vm, settings, admin_a, tenant_a, tenant_b, hosts
):
    moment = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=2)
    query = f"?ts={int(moment.timestamp())}"
    assert push(admin_a, tenant_a, SCRAPE, query=query).status_code == 202
    with tenant_scope(tenant_a.id):
        learned = telemetry_gpus_discover(tenant=tenant_a)
    # Both hosts' GPUs; the L40S node's series name a pod, found by its GPUs' UUIDs.
    assert learned["learned_gpus"] == 6, learned
    assert learned["hours_marked"] >= 1
    forwarded = _reads(tenant_a, moment)
    assert forwarded["points"]
    assert forwarded["rollups"]
    # B has a host of the same name and the same GPU UUIDs: never a match.
    with tenant_scope(tenant_b.id):
        assert sample_store().resources_reporting(tenant_id=tenant_b.id, since=moment) == []

    settings.TELEMETRY_BACKEND = "builtin"
    response = push(admin_a, tenant_a, SCRAPE, query=query)
    assert response.status_code == 200, response.content
    assert response.json()["learned_gpus"] == 0  # the job learned them all
    assert _reads(tenant_a, moment) == forwarded


def test_the_gpu_job_relabels_a_swapped_gpu_once(vm, admin_a, tenant_a, hosts):
    line = 'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="{uuid}",Hostname="acme-gpu-sat-01"}} 5\n'
    old, new = (
        "GPU-00000000-0000-4000-8000-000000000001",
        "GPU-00000000-0000-4000-8000-000000000002",
    )
    now = timezone.now().replace(microsecond=0)
    before = int((now - dt.timedelta(minutes=3)).timestamp())
    assert push(admin_a, tenant_a, line.format(uuid=old), query=f"?ts={before}").status_code == 202
    with tenant_scope(tenant_a.id):
        telemetry_gpus_discover(tenant=tenant_a, now=now)
        assert GpuDevice.objects.get(compute=hosts[0], index=0).uuid == old
    later = int((now - dt.timedelta(minutes=1)).timestamp())
    assert push(admin_a, tenant_a, line.format(uuid=new), query=f"?ts={later}").status_code == 202
    with tenant_scope(tenant_a.id):
        first = telemetry_gpus_discover(tenant=tenant_a, now=now)
        second = telemetry_gpus_discover(tenant=tenant_a, now=now)
        assert GpuDevice.objects.get(compute=hosts[0], index=0).uuid == new
    assert (first["relabelled_gpus"], second["relabelled_gpus"]) == (1, 0)


# --- The tenant label -------------------------------------------------------------------------


def test_a_configured_label_value_is_written_and_read(vm, settings, admin_a, tenant_a, hosts):
    settings.TELEMETRY_TENANT_LABEL = "client"
    settings.TELEMETRY_TENANT_LABEL_VALUES = {tenant_a.slug: "acme"}
    moment = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    text = 'DCGM_FI_DEV_GPU_UTIL{Hostname="acme-gpu-sat-01",gpu="0",client="evil"} 40\n'
    assert push(admin_a, tenant_a, text, query=f"?ts={int(moment.timestamp())}").status_code == 202
    exported = vm.export(f'{{groundwork="{settings.TELEMETRY_INSTANCE}"}}')
    assert [line["metric"]["client"] for line in exported] == ["acme"]
    response = admin_a.client.get(
        url(tenant_a, "series"),
        {"resource": "compute:acme-gpu-sat-01", "metric": "gpu_utilization", "step": "raw"},
    )
    assert response.status_code == 200, response.content
    assert [point["value"] for point in response.json()["points"]] == [40.0]


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("tenant", {"acme": "7"}),  # a bare id is another tenant's default value
        ("tenant", {"acme": "x", "globex": "x"}),
        ("tenant", {"acme": 'a"}'}),
        ("Hostname", {}),
        ("__name__", {}),
        ("te-nant", {}),
    ],
)
def test_label_settings_that_could_mix_tenants_are_refused(name, values):
    with pytest.raises(ImproperlyConfigured):
        check_tenant_label_settings(name, values)


HOSTILE = [
    '"} or {__name__=~".+',
    ".*",
    "acme-gpu-sat-01|.*",
    "\\",
    'x", tenant=~".*',
    "\n}",
    "{}",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_hostname_is_a_literal_in_every_dcgm_read(
    vm, admin_a, admin_b, tenant_a, tenant_b, hostile
):
    """Hostnames and UUIDs reach dcgm selectors from the inventory: quoted, regex-escaped, and
    under the tenant's matcher, so a read of A's oddly named host finds its series and only
    those, never B's series under the same or a matching Hostname."""
    from tests.inventory.estate import gpu_uuid, make_gpu_node

    uuids = [gpu_uuid(), gpu_uuid()]
    node = make_gpu_node(tenant_a, hostname=hostile, gpu_count=2, gpu_uuids=uuids)
    make_gpu_node(tenant_b, hostname=hostile, gpu_count=2, gpu_uuids=uuids)
    moment = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=1)
    ms = int(moment.timestamp() * 1000)

    def series(host: str, value: float, gpu: str = "0") -> tuple:
        labels = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": host, "gpu": gpu}
        return (labels, [(value, ms)])

    mine = snappy(write_request([series(hostile, 10.0), series(hostile, 30.0, gpu="1")]))
    assert remote_write(admin_a, tenant_a.slug, mine).status_code == 204
    others = [series(hostile, 77.0), series("acme-gpu-sat-01", 77.0), series("x", 77.0)]
    assert remote_write(admin_b, tenant_b.slug, snappy(write_request(others))).status_code == 204
    store = sample_store()
    window = {"start": moment - dt.timedelta(minutes=5), "end": moment + dt.timedelta(minutes=5)}
    code = METRICS_BY_NAME["gpu_utilization"].code
    with tenant_scope(tenant_a.id):
        points = store.series_points(
            tenant_id=tenant_a.id, kind=1, resource_id=node.pk, metric=code, limit=10, **window
        )
        stats = store.window_stats(tenant_id=tenant_a.id, kind=1, metric=code, **window)
    assert points == [(moment, 20.0)]
    assert [(row[0], row[1], row[2], row[3]) for row in stats] == [(node.pk, 20.0, 20.0, 1)]
