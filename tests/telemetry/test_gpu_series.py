"""A GPU's own series through the JSON ingest (``gpu:<hostname>/<index>``, ``gpu_id``), the
series API (``?gpu=`` with the compute resource, or ``gpu_id``), rollups and retention."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from operations.telemetry import services, tasks
from operations.telemetry.metrics import ResourceKind
from operations.telemetry.storage import sample_store
from tenants.scoping import tenant_scope
from tests.factories import make_gpu_device
from tests.telemetry.helpers import code, iso, rollups, stored, url

pytestmark = pytest.mark.django_db

GPU = ResourceKind.GPU.value
UTIL = code("gpu_utilization")


@pytest.fixture
def gpus(tenant_a, tenant_b, estate):
    node, foreign = estate["node"], estate["foreign"]
    return {
        "first": make_gpu_device(tenant_a, compute=node, index=0),
        "idle": make_gpu_device(tenant_a, compute=node, index=1),
        "mig": make_gpu_device(
            tenant_a, compute=node, index=2, mig_instance="7", mig_profile="1g.10gb"
        ),
        "foreign": make_gpu_device(tenant_b, compute=foreign, index=0),
    }


@pytest.fixture
def hour():
    return (timezone.now() - dt.timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)


def post(actor, tenant, samples):
    return actor.client.post(url(tenant, "samples"), {"samples": samples}, format="json")


def sample(resource=None, *, ts, value, **reference):
    named = {"resource": resource} if resource else reference
    return {**named, "metric": "gpu_utilization", "ts": iso(ts), "value": value}


def series(actor, tenant, **params):
    return actor.client.get(url(tenant, "series"), {"metric": "gpu_utilization", **params})


def test_json_samples_name_a_gpu_by_host_and_index_uuid_mig_or_id(
    admin_a, tenant_a, estate, gpus, hour
):
    response = post(
        admin_a,
        tenant_a,
        [
            sample("gpu:acme-gpu-sat-01/0", ts=hour, value=91),
            sample(f"gpu:{gpus['idle'].uuid}", ts=hour, value=2),
            sample("gpu:acme-gpu-sat-01/2/7", ts=hour, value=40),
            sample(ts=hour + dt.timedelta(minutes=1), value=93, gpu_id=gpus["first"].pk),
            sample("compute:acme-gpu-sat-01", ts=hour, value=46.5),
        ],
    )
    assert response.status_code == 200, response.content
    assert response.json()["inserted"] == 5
    gpu_rows = {(row[1], row[4]) for row in stored(tenant_a) if row[0] == GPU}
    assert gpu_rows == {
        (gpus["first"].pk, 91.0),
        (gpus["first"].pk, 93.0),
        (gpus["idle"].pk, 2.0),
        (gpus["mig"].pk, 40.0),
    }


def test_an_unknown_or_foreign_gpu_refuses_the_batch(admin_a, tenant_a, estate, gpus, hour):
    response = post(
        admin_a,
        tenant_a,
        [
            sample("gpu:acme-gpu-sat-01/5", ts=hour, value=1),
            sample(f"gpu:{gpus['foreign'].uuid}", ts=hour, value=1),
            sample(ts=hour, value=1, gpu_id=gpus["foreign"].pk),
            sample("gpu:acme-gpu-sat-01", ts=hour, value=1),
            {**sample("gpu:acme-gpu-sat-01/0", ts=hour, value=1), "metric": "error_rate"},
        ],
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "samples.0.resource": ["Unknown GPU 'acme-gpu-sat-01/5'."],
        "samples.1.resource": [f"Unknown GPU '{gpus['foreign'].uuid}'."],
        "samples.2.gpu_id": [f"Unknown GPU id {gpus['foreign'].pk}."],
        "samples.3.resource": ["Unknown GPU 'acme-gpu-sat-01'."],
        "samples.4.metric": ["Metric 'error_rate' does not apply to GPUs."],
    }
    assert stored(tenant_a) == []


def test_the_series_of_one_gpu_by_index_uuid_mig_or_id(admin_a, tenant_a, estate, gpus, hour):
    post(
        admin_a,
        tenant_a,
        [
            sample("gpu:acme-gpu-sat-01/0", ts=hour, value=91),
            sample("gpu:acme-gpu-sat-01/1", ts=hour, value=2),
            sample("gpu:acme-gpu-sat-01/2/7", ts=hour, value=40),
        ],
    )
    window = {"from": iso(hour), "step": "raw"}
    node = "compute:acme-gpu-sat-01"
    answers = [
        series(admin_a, tenant_a, resource=node, gpu="1", **window),
        series(admin_a, tenant_a, compute_id=estate["node"].pk, gpu=gpus["idle"].uuid, **window),
        series(admin_a, tenant_a, gpu_id=gpus["idle"].pk, **window),
        series(admin_a, tenant_a, resource="gpu:acme-gpu-sat-01/1", **window),
    ]
    for response in answers:
        assert response.status_code == 200, response.content
        assert response.json()["resource"] == {
            "kind": "gpu",
            "id": gpus["idle"].pk,
            "name": "acme-gpu-sat-01/1",
        }
        assert response.json()["points"] == [{"ts": iso(hour), "value": 2.0}]
    mig = series(admin_a, tenant_a, resource=node, gpu="2/7", **window)
    assert mig.json()["resource"]["name"] == "acme-gpu-sat-01/2/7"
    assert mig.json()["points"] == [{"ts": iso(hour), "value": 40.0}]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"resource": "compute:acme-gpu-sat-01", "gpu": "9"}, "gpu", "has no GPU '9'"),
        ({"resource": "compute:acme-gpu-sat-01", "gpu": "x/y/z"}, "gpu", "has no GPU"),
        ({"resource": "deployment:fraud-scoring-prod", "gpu": "0"}, "gpu", "Give the GPU's"),
        ({"gpu": "0"}, "resource", "Name the resource once"),
        ({"gpu_id": 987654}, "gpu_id", "Unknown GPU id 987654."),
        ({"resource": "gpu:acme-gpu-sat-01/9"}, "resource", "Unknown GPU 'acme-gpu-sat-01/9'."),
    ],
)
def test_bad_gpu_queries_name_the_field(admin_a, tenant_a, estate, gpus, params, field, message):
    response = series(admin_a, tenant_a, **params)
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]["fields"][field][0]


def test_another_tenants_gpu_is_unknown_to_the_series_api(admin_a, tenant_a, estate, gpus):
    foreign = gpus["foreign"]
    for params, field in (
        ({"gpu_id": foreign.pk}, "gpu_id"),
        ({"resource": f"gpu:{foreign.uuid}"}, "resource"),
        ({"resource": "compute:acme-gpu-sat-01", "gpu": foreign.uuid}, "gpu"),
    ):
        response = series(admin_a, tenant_a, **params)
        assert response.status_code == 400, params
        assert list(response.json()["error"]["fields"]) == [field]


def test_each_gpu_is_rolled_up_on_its_own(admin_a, tenant_a, estate, gpus, hour):
    post(
        admin_a,
        tenant_a,
        [
            sample("gpu:acme-gpu-sat-01/0", ts=hour + dt.timedelta(minutes=m), value=v)
            for m, v in ((5, 90), (35, 100))
        ]
        + [sample("gpu:acme-gpu-sat-01/1", ts=hour + dt.timedelta(minutes=5), value=0)],
    )
    with tenant_scope(tenant_a.id):
        services.telemetry_rollup_pending(tenant=tenant_a)
    gpu_rollups = {row[1]: row[4:] for row in rollups(tenant_a) if row[0] == GPU}
    assert gpu_rollups == {
        gpus["first"].pk: (90.0, 100.0, 95.0, 2),
        gpus["idle"].pk: (0.0, 0.0, 0.0, 1),
    }
    hourly = series(
        admin_a,
        tenant_a,
        resource="compute:acme-gpu-sat-01",
        gpu="0",
        step="1h",
        **{"from": iso(hour)},
    )
    assert hourly.json()["points"] == [
        {"ts": iso(hour), "min": 90.0, "max": 100.0, "avg": 95.0, "count": 2}
    ]


def test_retention_removes_a_gpus_old_samples(tenant_a, tenant_b, estate, gpus):
    now = timezone.now().replace(microsecond=0)
    rows = [
        (tenant_a.id, GPU, gpus["first"].pk, UTIL, now - dt.timedelta(days=age), float(age))
        for age in (45, 1)
    ]
    with tenant_scope(tenant_a.id), transaction.atomic():
        sample_store().insert_samples(rows)
    assert tasks.retention_tenant.apply(kwargs={"tenant_id": tenant_a.id}).get()["samples"] == 1
    assert [(row[0], row[1], row[4]) for row in stored(tenant_a)] == [(GPU, gpus["first"].pk, 1.0)]
