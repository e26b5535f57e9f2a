"""Per-GPU series from dcgm-exporter scrapes: each GPU (or MIG instance) of a node is its own
series (kind GPU, resource = its GpuDevice), learned on first sight and audited, beside the
node's aggregate (kind COMPUTE)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from operations.inventory.models import GpuDevice
from operations.telemetry.metrics import ResourceKind
from operations.telemetry.prometheus import parse_exposition, telemetry_ingest_series
from tenants.models import AuditEvent
from tenants.scoping import tenant_scope
from tests.factories import make_gpu_device
from tests.inventory.estate import make_gpu_node
from tests.telemetry.helpers import code, stored, url
from tests.telemetry.test_prometheus import IDLE_UUIDS, SAT_UUIDS, SCRAPE

pytestmark = pytest.mark.django_db

H100 = "NVIDIA H100 80GB HBM3"
DRIVER = 'DCGM_FI_DRIVER_VERSION="535.104.12"'
GPU = ResourceKind.GPU.value
COMPUTE = ResourceKind.COMPUTE.value


def dcgm_line(family: str, value, *, gpu: int, uuid: str, host: str = "node-1", mig=None) -> str:
    """One series exactly as dcgm-exporter writes it (label order included)."""
    labels = f'gpu="{gpu}",UUID="{uuid}",device="nvidia{gpu}",modelName="{H100}"'
    if mig is not None:
        profile, instance = mig
        labels += f',GPU_I_PROFILE="{profile}",GPU_I_ID="{instance}"'
    return f'{family}{{{labels},Hostname="{host}",{DRIVER}}} {value}'


def scrape(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def push(actor, tenant, text: str):
    return actor.client.generic(
        "POST",
        url(tenant, "prometheus"),
        text.encode(),
        content_type="text/plain; version=0.0.4; charset=utf-8",
    )


def gpus_of(tenant, compute=None) -> dict[tuple[int, str], GpuDevice]:
    with tenant_scope(tenant.id):
        rows = GpuDevice.objects.all()
        if compute is not None:
            rows = rows.filter(compute=compute)
        return {(gpu.index, gpu.mig_instance): gpu for gpu in rows}


def gpu_values(tenant, gpu: GpuDevice) -> dict[int, float]:
    return {row[2]: row[4] for row in stored(tenant) if row[:2] == (GPU, gpu.pk)}


def node_values(tenant, compute) -> dict[int, float]:
    return {row[2]: row[4] for row in stored(tenant) if row[:2] == (COMPUTE, compute.pk)}


def learned_events(tenant) -> list[AuditEvent]:
    events = AuditEvent.objects.filter(tenant=tenant, object_type="inventory.GpuDevice")
    return list(events.filter(action="create"))


@pytest.fixture
def hosts(tenant_a, tenant_b):
    sat = make_gpu_node(tenant_a, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    idle = make_gpu_node(tenant_a, hostname="acme-gpu-idle-01", gpu_uuids=IDLE_UUIDS)
    # Tenant B: the same hostname and the same GPU UUIDs, never a match for A.
    foreign = make_gpu_node(tenant_b, hostname="acme-gpu-sat-01", gpu_count=4, gpu_uuids=SAT_UUIDS)
    make_gpu_device(tenant_b, compute=foreign, index=0, uuid=SAT_UUIDS[0])
    return sat, idle


def test_a_real_scrape_keeps_each_gpu_as_its_own_series(admin_a, tenant_a, hosts):
    sat, idle = hosts
    before = timezone.now()
    response = push(admin_a, tenant_a, SCRAPE)
    assert response.status_code == 200, response.content
    assert (response.json()["gpus"], response.json()["learned_gpus"]) == (6, 6)

    sat_gpus = gpus_of(tenant_a, sat)
    assert sorted(sat_gpus) == [(0, ""), (1, ""), (2, ""), (3, "")]
    assert [sat_gpus[(i, "")].uuid for i in range(4)] == SAT_UUIDS
    assert {gpu.model_name for gpu in sat_gpus.values()} == {H100}
    for gpu in sat_gpus.values():
        assert before <= gpu.first_seen_at == gpu.last_seen_at <= timezone.now()
    # The idle host reports its exporter pod as Hostname: found by its UUIDs.
    idle_gpus = gpus_of(tenant_a, idle)
    assert [idle_gpus[(i, "")].uuid for i in range(2)] == IDLE_UUIDS
    assert idle_gpus[(0, "")].model_name == "NVIDIA L40S"

    hottest = gpu_values(tenant_a, sat_gpus[(3, "")])
    assert hottest[code("gpu_temperature_celsius")] == 77.0
    assert hottest[code("gpu_power_watts")] == pytest.approx(587.455)
    assert gpu_values(tenant_a, idle_gpus[(1, "")])[code("gpu_power_watts")] == pytest.approx(
        31.882
    )
    # Each GPU has all 8 metrics; DCGM's ratios are scaled to percentages per GPU too.
    for gpu in sat_gpus.values():
        assert len(gpu_values(tenant_a, gpu)) == 8
    engine = [
        gpu_values(tenant_a, sat_gpus[(i, "")])[code("gpu_graphics_engine_active")]
        for i in range(4)
    ]
    assert all(0 <= value <= 100 for value in engine)
    # The node aggregate is derived from the same values, as before.
    utils = [gpu_values(tenant_a, sat_gpus[(i, "")])[code("gpu_utilization")] for i in range(4)]
    node = node_values(tenant_a, sat)
    assert node[code("gpu_utilization")] == pytest.approx(sum(utils) / 4) == 96.0
    assert node[code("gpu_graphics_engine_active")] == pytest.approx(sum(engine) / 4)
    used = [gpu_values(tenant_a, sat_gpus[(i, "")])[code("gpu_memory_used_mib")] for i in range(4)]
    assert node[code("gpu_memory_used_mib")] == pytest.approx(sum(used)) == 283223.0


def test_learned_gpus_are_audited_once_by_the_ingest_token(admin_a, tenant_a, hosts):
    assert push(admin_a, tenant_a, SCRAPE).status_code == 200
    assert push(admin_a, tenant_a, SCRAPE).status_code == 200
    events = learned_events(tenant_a)
    assert len(events) == 6
    assert {event.source for event in events} == {"api"}
    assert {event.actor_user_id for event in events} == {admin_a.user.pk}
    assert all(event.actor_token_id is not None for event in events)
    assert events[0].changes["uuid"][1] in SAT_UUIDS + IDLE_UUIDS


def test_a_gpu_that_appears_later_is_learned_then(admin_a, tenant_a, tenant_b):
    node = make_gpu_node(tenant_a, hostname="node-1", gpu_count=8, gpu_uuids=[])
    uuids = [f"GPU-00000000-0000-4000-8000-00000000000{i}" for i in range(3)]
    first = scrape(*(dcgm_line("DCGM_FI_DEV_GPU_UTIL", 37, gpu=i, uuid=uuids[i]) for i in (0, 1)))
    assert push(admin_a, tenant_a, first).json()["learned_gpus"] == 2
    known = {key: gpu.pk for key, gpu in gpus_of(tenant_a, node).items()}

    later = scrape(
        *(dcgm_line("DCGM_FI_DEV_GPU_UTIL", 40 + i, gpu=i, uuid=uuids[i]) for i in range(3))
    )
    response = push(admin_a, tenant_a, later)
    assert response.status_code == 200, response.content
    assert (response.json()["gpus"], response.json()["learned_gpus"]) == (3, 1)
    gpus = gpus_of(tenant_a, node)
    assert {key: gpus[key].pk for key in known} == known  # the first two keep their rows
    assert gpus[(2, "")].uuid == uuids[2]
    assert len(learned_events(tenant_a)) == 3
    assert gpu_values(tenant_a, gpus[(2, "")]) == {code("gpu_utilization"): 42.0}


def test_a_gpu_is_found_by_its_uuid_when_the_hostname_is_the_exporter_pod(
    admin_a, tenant_a, tenant_b
):
    node = make_gpu_node(tenant_a, hostname="node-7", gpu_uuids=[])
    gpu = make_gpu_device(tenant_a, compute=node, index=5)
    text = scrape(
        dcgm_line("DCGM_FI_DEV_GPU_UTIL", 12, gpu=5, uuid=gpu.uuid, host="dcgm-exporter-x2k9")
    )
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 200, response.content
    assert response.json()["learned_gpus"] == 0
    assert gpu_values(tenant_a, gpu) == {code("gpu_utilization"): 12.0}
    assert node_values(tenant_a, node) == {code("gpu_utilization"): 12.0}


def test_mig_instances_are_series_of_their_own(admin_a, tenant_a, tenant_b):
    node = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    parent = "GPU-11111111-2222-4333-8444-555555555555"
    whole = "GPU-66666666-7777-4888-8999-000000000000"
    text = scrape(
        "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).",
        "# TYPE DCGM_FI_DEV_FB_USED gauge",
        dcgm_line("DCGM_FI_DEV_FB_USED", 9000, gpu=0, uuid=parent, mig=("1g.10gb", 7)),
        dcgm_line("DCGM_FI_DEV_FB_USED", 4000, gpu=0, uuid=parent, mig=("1g.10gb", 8)),
        dcgm_line("DCGM_FI_DEV_FB_USED", 30000, gpu=0, uuid=parent, mig=("3g.40gb", 2)),
        dcgm_line("DCGM_FI_DEV_FB_USED", 70000, gpu=1, uuid=whole),
        "# HELP DCGM_FI_PROF_GR_ENGINE_ACTIVE Ratio of time the graphics engine is active.",
        "# TYPE DCGM_FI_PROF_GR_ENGINE_ACTIVE gauge",
        dcgm_line("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.5, gpu=0, uuid=parent, mig=("1g.10gb", 7)),
        dcgm_line("DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.0, gpu=0, uuid=parent, mig=("1g.10gb", 8)),
    )
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 200, response.content
    assert response.json()["learned_gpus"] == 4
    gpus = gpus_of(tenant_a, node)
    assert sorted(gpus) == [(0, "2"), (0, "7"), (0, "8"), (1, "")]
    assert (gpus[(0, "7")].mig_profile, gpus[(0, "7")].uuid) == ("1g.10gb", parent)
    assert gpus[(0, "2")].mig_profile == "3g.40gb"
    assert gpus[(1, "")].mig_profile == ""
    assert gpu_values(tenant_a, gpus[(0, "7")]) == {
        code("gpu_memory_used_mib"): 9000.0,
        code("gpu_graphics_engine_active"): 50.0,
    }
    assert gpu_values(tenant_a, gpus[(0, "8")])[code("gpu_memory_used_mib")] == 4000.0
    node_row = node_values(tenant_a, node)
    assert node_row[code("gpu_memory_used_mib")] == 113000.0
    assert node_row[code("gpu_graphics_engine_active")] == 25.0


def test_a_tenants_scrape_never_maps_to_another_tenants_gpu(admin_a, tenant_a, tenant_b, hosts):
    foreign = gpus_of(tenant_b)
    foreign_before = {key: (gpu.last_seen_at, gpu.uuid) for key, gpu in foreign.items()}
    foreign_events = len(learned_events(tenant_b))
    assert push(admin_a, tenant_a, SCRAPE).status_code == 200
    with tenant_scope(tenant_a.id):
        own_ids = set(GpuDevice.objects.values_list("pk", flat=True))
    assert len(own_ids) == 6
    assert not own_ids & {gpu.pk for gpu in foreign.values()}
    assert {row[1] for row in stored(tenant_a) if row[0] == GPU} == own_ids
    assert stored(tenant_b) == []
    after = {key: (gpu.last_seen_at, gpu.uuid) for key, gpu in gpus_of(tenant_b).items()}
    assert after == foreign_before
    assert len(learned_events(tenant_b)) == foreign_events == 1


def test_a_uuid_known_only_in_another_tenant_is_unknown(admin_a, tenant_a, tenant_b, hosts):
    # B knows SAT_UUIDS[0] as a GpuDevice; A has no host "elsewhere" and no such GPU of its own.
    with tenant_scope(tenant_a.id):
        GpuDevice.objects.filter(uuid=SAT_UUIDS[0]).delete()
    text = scrape(dcgm_line("DCGM_FI_DEV_GPU_UTIL", 1, gpu=0, uuid=SAT_UUIDS[0], host="elsewhere"))
    # A's node still lists that UUID: make it list nothing, so only B's row could match.
    with tenant_scope(tenant_a.id):
        from operations.inventory.models import ComputeResource

        ComputeResource.objects.filter(tenant=tenant_a).update(gpu_uuids=[])
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 400
    assert "Unknown compute resource" in str(response.json()["error"]["fields"])
    assert gpus_of(tenant_a) == {}


def test_last_seen_moves_at_most_hourly_with_one_inventory_query(tenant_a, tenant_b):
    node = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    uuid = "GPU-00000000-0000-4000-8000-000000000001"
    series, _ignored = parse_exposition(
        scrape(dcgm_line("DCGM_FI_DEV_GPU_TEMP", 50, gpu=0, uuid=uuid))
    )
    start = timezone.now().replace(microsecond=0)

    def ingest(minutes: int):
        moment = start + dt.timedelta(minutes=minutes)
        with tenant_scope(tenant_a.id), CaptureQueriesContext(connection) as queries:
            telemetry_ingest_series(tenant=tenant_a, series=series, default_ts=moment, now=moment)
        return [q["sql"] for q in queries.captured_queries if "inventory_" in q["sql"]]

    ingest(0)
    (gpu,) = gpus_of(tenant_a, node).values()
    assert gpu.first_seen_at == gpu.last_seen_at == start
    # A known GPU seen again within the hour: the one query that resolves hosts and GPUs (on
    # PostgreSQL, the inventory version, then the index once, since the GPU was learned).
    assert len(ingest(30)) <= 2
    # Then one query: the index (SQLite), or the version it is kept under (PostgreSQL).
    assert len(ingest(45)) == 1
    assert gpus_of(tenant_a, node)[(0, "")].last_seen_at == start
    # Over an hour later: that query and one UPDATE.
    inventory_sql = ingest(61)
    assert len(inventory_sql) == 2
    assert inventory_sql[1].lstrip().upper().startswith("UPDATE")
    refreshed = gpus_of(tenant_a, node)[(0, "")]
    assert refreshed.last_seen_at == start + dt.timedelta(minutes=61)
    assert refreshed.first_seen_at == start


def test_a_swapped_gpu_gets_its_new_uuid_audited(admin_a, tenant_a, tenant_b):
    node = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    gpu = make_gpu_device(tenant_a, compute=node, index=0, model_name="NVIDIA A100")
    new_uuid = "GPU-00000000-0000-4000-8000-0000000000aa"
    response = push(
        admin_a, tenant_a, scrape(dcgm_line("DCGM_FI_DEV_GPU_UTIL", 5, gpu=0, uuid=new_uuid))
    )
    assert response.status_code == 200, response.content
    refreshed = gpus_of(tenant_a, node)[(0, "")]
    assert (refreshed.pk, refreshed.uuid, refreshed.model_name) == (gpu.pk, new_uuid, H100)
    event = AuditEvent.objects.get(tenant=tenant_a, action="update", object_id=str(gpu.pk))
    assert event.changes["uuid"] == [gpu.uuid, new_uuid]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ('gpu="x",UUID="GPU-00000000-0000-4000-8000-000000000001"', "The gpu label must be"),
        ('gpu="99999",UUID="GPU-00000000-0000-4000-8000-000000000001"', "The gpu label must be"),
        ('gpu="0",UUID="not-a-uuid"', "The UUID label is not a GPU UUID"),
        (f'gpu="0",UUID="",GPU_I_ID="{"9" * 40}"', "The GPU_I_ID label is longer than 32"),
    ],
)
def test_bad_gpu_labels_refuse_the_scrape_and_learn_nothing(
    admin_a, tenant_a, tenant_b, labels, message
):
    make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    good = dcgm_line(
        "DCGM_FI_DEV_GPU_UTIL", 5, gpu=1, uuid="GPU-00000000-0000-4000-8000-0000000000bb"
    )
    text = scrape(good, f'DCGM_FI_DEV_GPU_UTIL{{{labels},Hostname="node-1"}} 5')
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 400
    (messages,) = response.json()["error"]["fields"].values()
    assert messages[0].startswith(message)
    assert gpus_of(tenant_a) == {}
    assert stored(tenant_a) == []


def test_a_gpu_value_out_of_range_refuses_the_scrape(admin_a, tenant_a, tenant_b):
    make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    uuids = [f"GPU-00000000-0000-4000-8000-00000000000{i}" for i in range(2)]
    # The node's mean (75) is in range; one GPU's 140% is not.
    text = scrape(
        dcgm_line("DCGM_FI_DEV_GPU_UTIL", 140, gpu=0, uuid=uuids[0]),
        dcgm_line("DCGM_FI_DEV_GPU_UTIL", 10, gpu=1, uuid=uuids[1]),
    )
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 400
    (key,) = response.json()["error"]["fields"]
    assert key.startswith('DCGM_FI_DEV_GPU_UTIL{Hostname="node-1",gpu="0"} @ ')
    assert gpus_of(tenant_a) == {}


def test_a_kept_fleet_index_follows_every_inventory_change(admin_a, tenant_a, tenant_b):
    # The same scrape every time: the index of its hosts and GPUs is kept between requests,
    # and read again after any write to the tenant's compute resources or GPUs.
    uuid = "GPU-00000000-0000-4000-8000-000000000001"
    text = scrape(dcgm_line("DCGM_FI_DEV_GPU_UTIL", 37, gpu=0, uuid=uuid))
    old = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    assert push(admin_a, tenant_a, text).json()["learned_gpus"] == 1
    assert push(admin_a, tenant_a, text).json()["learned_gpus"] == 0

    # The host is renamed and another takes its name: the scrape now maps to the new one.
    with tenant_scope(tenant_a.id):
        old.hostname = "node-1-retired"
        old.save()
    new = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    response = push(admin_a, tenant_a, text)
    assert response.status_code == 200, response.content
    assert response.json()["learned_gpus"] == 1
    assert node_values(tenant_a, new) == {code("gpu_utilization"): 37.0}

    # Its GPU is forgotten: the next scrape learns it again, audited.
    with tenant_scope(tenant_a.id):
        GpuDevice.objects.filter(compute=new).delete()
    before = len(learned_events(tenant_a))
    assert push(admin_a, tenant_a, text).json()["learned_gpus"] == 1
    assert len(learned_events(tenant_a)) == before + 1
    assert set(gpus_of(tenant_a, new)) == {(0, "")}

    # Both hosts are deleted (the old one still knew the UUID): the scrape is refused.
    with tenant_scope(tenant_a.id):
        GpuDevice.objects.all().delete()
        new.delete()
        old.delete()
    assert push(admin_a, tenant_a, text).status_code == 400


# --- Series read again (kept per tenant and inventory version) -----------------------------------

UUID_0, UUID_1 = (f"GPU-00000000-0000-4000-8000-00000000000{i}" for i in range(2))


def test_a_scrape_read_again_is_checked_as_the_first_time(admin_a, tenant_a, tenant_b):
    node = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])

    def text(first, second, ts):
        return scrape(
            f"{dcgm_line('DCGM_FI_DEV_GPU_UTIL', first, gpu=0, uuid=UUID_0)} {ts}",
            f"{dcgm_line('DCGM_FI_DEV_GPU_UTIL', second, gpu=1, uuid=UUID_1)} {ts}",
        )

    millis = int((timezone.now() - dt.timedelta(minutes=5)).timestamp()) * 1000
    assert push(admin_a, tenant_a, text(50, 10, millis)).json()["learned_gpus"] == 2
    assert push(admin_a, tenant_a, text(50, 10, millis + 1000)).status_code == 200
    # The same series, known now: one GPU out of range refuses it with the same key.
    response = push(admin_a, tenant_a, text(140, 10, millis + 2000))
    assert response.status_code == 400
    (key,) = response.json()["error"]["fields"]
    assert key.startswith('DCGM_FI_DEV_GPU_UTIL{Hostname="node-1",gpu="0"} @ ')
    # A GPU's series given twice in one scrape: its values are averaged, as ever.
    twice = text(50, 10, millis + 3000) + text(70, 10, millis + 3000).split("\n")[0] + "\n"
    assert push(admin_a, tenant_a, twice).status_code == 200
    gpu = gpus_of(tenant_a, node)[(0, "")]
    at = dt.datetime.fromtimestamp((millis + 3000) / 1000, tz=dt.UTC)
    rows = [row for row in stored(tenant_a) if row[:2] == (GPU, gpu.pk) and row[3] == at]
    assert [row[4] for row in rows] == [60.0]


def test_a_refused_scrape_leaves_its_gpus_to_be_learned_by_the_next(admin_a, tenant_a, tenant_b):
    make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    util = dcgm_line("DCGM_FI_DEV_GPU_UTIL", 37, gpu=0, uuid=UUID_0)
    refused = scrape(util, dcgm_line("DCGM_FI_DEV_GPU_TEMP", "NaN", gpu=0, uuid=UUID_0))
    for _attempt in range(2):
        assert push(admin_a, tenant_a, refused).status_code == 400
        assert gpus_of(tenant_a) == {}
    response = push(admin_a, tenant_a, scrape(util))
    assert response.status_code == 200, response.content
    assert response.json()["learned_gpus"] == 1
    assert len(learned_events(tenant_a)) == 1


def test_the_same_text_for_another_tenant_maps_to_its_own_hosts(
    admin_a, admin_b, tenant_a, tenant_b
):
    text = scrape(dcgm_line("DCGM_FI_DEV_GPU_UTIL", 37, gpu=0, uuid=UUID_0))
    own = make_gpu_node(tenant_a, hostname="node-1", gpu_uuids=[])
    for _attempt in range(2):
        assert push(admin_a, tenant_a, text).status_code == 200
    response = push(admin_b, tenant_b, text)
    assert response.status_code == 400
    assert "Unknown compute resource" in str(response.json()["error"]["fields"])
    theirs = make_gpu_node(tenant_b, hostname="node-1", gpu_uuids=[])
    response = push(admin_b, tenant_b, text)
    assert response.status_code == 200, response.content
    assert response.json()["learned_gpus"] == 1
    assert node_values(tenant_b, theirs) == {code("gpu_utilization"): 37.0}
    assert set(gpus_of(tenant_a, own)) == {(0, "")}
