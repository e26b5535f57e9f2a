"""POST telemetry/prometheus: a dcgm-exporter scrape mapped onto the tenant's compute."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from django.utils import timezone

from operations.telemetry.metrics import ResourceKind
from tenants.models import TenantRole
from tests.conftest import Actor
from tests.factories import make_member, make_token
from tests.inventory.estate import make_gpu_node
from tests.telemetry.helpers import code, iso, minutes_ago, stored, url

pytestmark = pytest.mark.django_db

SCRAPE = (Path(__file__).parent / "fixtures" / "dcgm_exporter_two_hosts.prom").read_text()
SAT_UUIDS = [
    "GPU-5fd4b3a2-1c9e-4f0b-8a67-2d1e9c3b7f01",
    "GPU-0b71c8e4-93d2-4a5f-b1e8-7c6d5a4f3e02",
    "GPU-a4e2f7d1-6b3c-4e8a-9f0d-1c2b3a4d5e03",
    "GPU-d9c8b7a6-5f4e-4d3c-8b2a-1f0e9d8c7b04",
]
# The second host reports its exporter pod as Hostname: it is found by its GPU UUIDs.
IDLE_UUIDS = [
    "GPU-3e1f0a9b-8c7d-4e6f-a5b4-c3d2e1f0a905",
    "GPU-7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c06",
]
IGNORED = [
    "DCGM_FI_DEV_MEM_CLOCK",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_PROF_DRAM_ACTIVE",
]


@pytest.fixture
def hosts(tenant_a, tenant_b):
    sat = make_gpu_node(tenant_a, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    idle = make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", gpu_uuids=IDLE_UUIDS)
    # Tenant B has a host of the same name and the same GPUs: never a match for A.
    make_gpu_node(tenant_b, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    return sat, idle


def push(actor, tenant, text: str | bytes, *, query: str = "", **headers):
    body = text.encode() if isinstance(text, str) else text
    return actor.client.generic(
        "POST",
        url(tenant, "prometheus") + query,
        body,
        content_type="text/plain; version=0.0.4; charset=utf-8",
        **headers,
    )


def values_of(tenant, resource_id, kind=ResourceKind.COMPUTE) -> dict[int, float]:
    return {row[2]: row[4] for row in stored(tenant) if row[:2] == (kind, resource_id)}


def node_rows(tenant) -> list[tuple]:
    return [row for row in stored(tenant) if row[0] == ResourceKind.COMPUTE]


def test_a_scrape_becomes_one_sample_per_host_metric_and_time(admin_a, tenant_a, hosts):
    sat, idle = hosts
    before = timezone.now().replace(microsecond=0)
    response = push(admin_a, tenant_a, SCRAPE)
    assert response.status_code == 200, response.content
    # 16 node aggregates and 48 per-GPU values (6 GPUs, learned on first sight).
    assert response.json() == {
        "received": 64,
        "inserted": 64,
        "duplicates": 0,
        "series": 48,
        "hosts": 2,
        "gpus": 6,
        "learned_gpus": 6,
        "ignored_families": IGNORED,
    }
    assert values_of(tenant_a, sat.pk) == pytest.approx(
        {
            code("gpu_utilization"): 96.0,  # mean of 97, 95, 99, 93
            code("gpu_memory_used_mib"): 283223.0,  # summed over the GPUs
            code("gpu_memory_free_mib"): 41093.0,
            code("gpu_power_watts"): 2438.0,
            code("gpu_temperature_celsius"): 77.0,  # the hottest GPU
            code("gpu_xid_errors"): 79.0,  # the highest last-XID
            code("gpu_graphics_engine_active"): 91.0586,  # DCGM's ratio as a percentage
            code("gpu_tensor_active"): 60.0,
        },
        abs=1e-3,
    )
    assert values_of(tenant_a, idle.pk) == pytest.approx(
        {
            code("gpu_utilization"): 1.5,
            code("gpu_memory_used_mib"): 688.0,
            code("gpu_memory_free_mib"): 90578.0,
            code("gpu_power_watts"): 70.0,
            code("gpu_temperature_celsius"): 34.0,
            code("gpu_xid_errors"): 0.0,
            code("gpu_graphics_engine_active"): 0.75,
            code("gpu_tensor_active"): 0.0,
        }
    )
    rows = stored(tenant_a)
    assert {row[0] for row in rows} == {ResourceKind.COMPUTE.value, ResourceKind.GPU.value}
    # Without timestamps in the text, every sample takes the receive time.
    (received_at,) = {row[3] for row in rows}
    assert before <= received_at <= timezone.now()
    assert received_at.microsecond == 0


def test_the_ts_parameter_dates_the_scrape_and_a_resend_is_idempotent(admin_a, tenant_a, hosts):
    moment = minutes_ago(10)
    query = f"?ts={iso(moment)}"
    assert push(admin_a, tenant_a, SCRAPE, query=query).json()["inserted"] == 64
    again = push(admin_a, tenant_a, SCRAPE, query=f"?ts={moment.timestamp():.0f}")
    assert again.status_code == 200
    assert (again.json()["inserted"], again.json()["duplicates"]) == (0, 64)
    assert {row[3] for row in stored(tenant_a)} == {moment}


def test_timestamps_in_the_text_win_and_group_the_gpus(admin_a, tenant_a, hosts):
    sat, _idle = hosts
    first, second = minutes_ago(2), minutes_ago(1)
    millis = [int(moment.timestamp() * 1000) for moment in (first, second)]
    host = 'Hostname="acme-gpu-sat-01"'
    text = "\n".join(
        [
            "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
            "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="{SAT_UUIDS[0]}",{host}}} 80 {millis[0]}',
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="1",UUID="{SAT_UUIDS[1]}",{host}}} 60 {millis[0]}',
            f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="{SAT_UUIDS[0]}",{host}}} 10 {millis[1]}',
            "",
        ]
    )
    response = push(admin_a, tenant_a, text, query=f"?ts={iso(minutes_ago(30))}")
    assert response.status_code == 200, response.content
    assert [(row[3], row[4]) for row in node_rows(tenant_a)] == [(first, 70.0), (second, 10.0)]


def test_a_series_without_hostname_is_found_by_uuid(admin_a, tenant_a, hosts):
    _sat, idle = hosts
    text = f'DCGM_FI_DEV_GPU_TEMP{{gpu="0",UUID="{IDLE_UUIDS[1]}"}} 41\n'
    assert push(admin_a, tenant_a, text).status_code == 200
    assert values_of(tenant_a, idle.pk) == {code("gpu_temperature_celsius"): 41.0}


def test_an_unknown_host_refuses_the_whole_scrape(admin_a, tenant_a, hosts):
    unknown = SCRAPE.replace('Hostname="dcgm-exporter-5k2xq"', 'Hostname="nobody"').replace(
        IDLE_UUIDS[0], "GPU-00000000-0000-0000-0000-000000000000"
    )
    response = push(admin_a, tenant_a, unknown)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    key = next(k for k in fields if k.startswith('DCGM_FI_DEV_GPU_UTIL{gpu="0"'))
    assert 'Hostname="nobody"' in key
    assert fields[key] == [
        "Unknown compute resource: no hostname 'nobody' and no GPU UUID "
        "'GPU-00000000-0000-0000-0000-000000000000' in this tenant's inventory."
    ]
    assert len(fields) == 8  # one per accepted family, for the one unknown GPU
    assert stored(tenant_a) == []


def test_another_tenants_gpus_are_unknown(admin_b, tenant_b, hosts):
    text = f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="{IDLE_UUIDS[0]}",Hostname="x"}} 5\n'
    response = push(admin_b, tenant_b, text)
    assert response.status_code == 400
    assert stored(tenant_b) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("NaN", "Expected a finite number (not NaN or infinity)."),
        ("+Inf", "Expected a finite number (not NaN or infinity)."),
    ],
)
def test_nan_and_infinity_refuse_the_scrape(admin_a, tenant_a, hosts, line, message):
    text = SCRAPE.replace(
        'Hostname="acme-gpu-sat-01",DCGM_FI_DRIVER_VERSION="535.129.03"} 77',
        f'Hostname="acme-gpu-sat-01",DCGM_FI_DRIVER_VERSION="535.129.03"}} {line}',
    )
    assert text != SCRAPE
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"].values()) == [[message]]
    assert stored(tenant_a) == []


def test_an_aggregate_out_of_range_refuses_the_scrape(admin_a, tenant_a, hosts):
    text = 'DCGM_FI_DEV_GPU_TEMP{gpu="0",Hostname="acme-gpu-sat-01"} 500\n'
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    # The GPU's own value and the node's aggregate are both out of range.
    assert sorted(key.split(" @ ")[0] for key in fields) == [
        'DCGM_FI_DEV_GPU_TEMP{Hostname="acme-gpu-sat-01",gpu="0"}',
        'DCGM_FI_DEV_GPU_TEMP{Hostname="acme-gpu-sat-01"}',
    ]
    for (message,) in fields.values():
        assert message.startswith("Out of range for gpu_temperature_celsius: -50 to 150")
    assert stored(tenant_a) == []


def test_old_and_future_timestamps_are_refused(admin_a, tenant_a, hosts):
    old = int((timezone.now() - dt.timedelta(days=45)).timestamp() * 1000)
    text = f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",Hostname="acme-gpu-sat-01"}} 5 {old}\n'
    response = push(admin_a, tenant_a, text)
    assert list(response.json()["error"]["fields"].values()) == [
        ["Older than this tenant's raw retention (30 days)."]
    ]
    future = push(admin_a, tenant_a, SCRAPE, query=f"?ts={iso(minutes_ago(-60))}")
    assert future.status_code == 400
    assert stored(tenant_a) == []


@pytest.mark.parametrize(
    "text",
    [
        'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="acme-gpu-sat-01" 5\n',
        'DCGM_FI_DEV_GPU_UTIL{gpu="0"} five\n',
        "# TYPE DCGM_FI_DEV_GPU_UTIL\n",
    ],
    ids=["unclosed-labels", "bad-value", "bad-type-line"],
)
def test_malformed_text_is_a_400_naming_the_body(admin_a, tenant_a, hosts, text):
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["body"]
    assert fields["body"][0].startswith("Not valid Prometheus text exposition")


def test_a_bad_ts_parameter_is_a_400(admin_a, tenant_a, hosts):
    response = push(admin_a, tenant_a, SCRAPE, query="?ts=yesterday")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["ts"]


def test_a_scrape_of_only_other_families_stores_nothing(admin_a, tenant_a, hosts):
    text = 'DCGM_FI_DEV_SM_CLOCK{gpu="0",Hostname="acme-gpu-sat-01"} 1980\n'
    response = push(admin_a, tenant_a, text)
    assert response.json() == {
        "received": 0,
        "inserted": 0,
        "duplicates": 0,
        "series": 0,
        "hosts": 0,
        "gpus": 0,
        "learned_gpus": 0,
        "ignored_families": ["DCGM_FI_DEV_SM_CLOCK"],
    }


def test_gzip_scrapes_are_accepted(admin_a, tenant_a, hosts):
    response = push(admin_a, tenant_a, gzip.compress(SCRAPE.encode()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert response.json()["inserted"] == 64


def test_json_is_not_prometheus_text(admin_a, tenant_a, hosts):
    response = admin_a.client.post(url(tenant_a, "prometheus"), {"samples": []}, format="json")
    assert response.status_code == 415


def test_the_ingest_scope_is_required(tenant_a, hosts):
    user = make_member(tenant_a, TenantRole.ADMIN)
    actor = Actor(user, make_token(user, scopes=("read", "write")))
    response = push(actor, tenant_a, SCRAPE)
    assert response.status_code == 403
    assert stored(tenant_a) == []
