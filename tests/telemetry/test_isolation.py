"""The telemetry routes never cross the tenant boundary.

``telemetry/`` is not a list of objects: its generic proofs run on the one-per-tenant policy
(``telemetry/policy``), and the ingest and series routes get their own: a foreign tenant's
URL is the same 404 as a missing tenant and writes nothing; another tenant's resources are
unknown (400) whether named by hostname, name or id; series never show another tenant's
samples.
"""

from __future__ import annotations

import datetime as dt

import pytest

from operations.telemetry import services
from operations.telemetry.models import TelemetryPolicy
from tenants.scoping import tenant_scope
from tests.isolation import TenantSingletonIsolationTests
from tests.telemetry.helpers import dirty_hours, iso, minutes_ago, rollups, stored, url
from tests.telemetry.remote_write_payloads import (
    from_exposition,
    remote_write,
    snappy,
    write_request,
)

SCRAPE_OF_B = 'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-b",Hostname="borealis-gpu-01"} 42\n'


def remote_write_of_b() -> bytes:
    moment_ms = int(minutes_ago(1).timestamp() * 1000)
    return snappy(write_request(from_exposition(SCRAPE_OF_B, moment_ms)))


def sample_for(resource: str, value: float = 3.0) -> dict:
    return {
        "resource": resource,
        "metric": "gpu_utilization",
        "ts": iso(minutes_ago(1)),
        "value": value,
    }


class TestTelemetryIsolation(TenantSingletonIsolationTests):
    resource = "telemetry"
    actor_fixture = "admin_a"
    update_payload = {"raw_retention_days": 7}

    def url(self, tenant_slug: str, what: str = "policy") -> str:
        return url(tenant_slug, what)

    def state_of(self, tenant) -> dict:
        with tenant_scope(tenant.id):
            policy = list(TelemetryPolicy.objects.values("raw_retention_days"))
        return {
            "policy": policy,
            "samples": stored(tenant),
            "rollups": rollups(tenant),
            "dirty": dirty_hours(tenant),
        }

    @pytest.fixture
    def b_has_data(self, tenant_b, estate):
        with tenant_scope(tenant_b.id):
            services.telemetry_ingest_batch(
                tenant=tenant_b, samples=[sample_for("compute:borealis-gpu-01", 77.0)]
            )
            services.telemetry_rollup_pending(tenant=tenant_b)
            services.telemetry_policy_update(tenant=tenant_b, raw_retention_days=14)

    @pytest.mark.parametrize(
        ("what", "content_type", "body"),
        [
            ("samples", "application/json", {"samples": [sample_for("compute:borealis-gpu-01")]}),
            ("prometheus", "text/plain", SCRAPE_OF_B),
            ("remote-write", "application/x-protobuf", None),
        ],
    )
    def test_ingest_into_b_is_the_missing_tenant_404_and_writes_nothing(
        self, caller, tenant_b, b_has_data, what, content_type, body
    ):
        before = self.state_of(tenant_b)
        if what == "remote-write":
            post = lambda slug: remote_write(caller, slug, remote_write_of_b())  # noqa: E731
        elif content_type == "text/plain":
            post = lambda slug: caller.client.generic(  # noqa: E731
                "POST", self.url(slug, what), body.encode(), content_type=content_type
            )
        else:
            post = lambda slug: caller.client.post(self.url(slug, what), body, format="json")  # noqa: E731
        foreign, missing = post(tenant_b.slug), post("no-such-tenant")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
        assert self.state_of(tenant_b) == before

    @pytest.mark.parametrize("what", ["series", "metrics", "policy"])
    def test_reading_b_is_the_missing_tenant_404(self, caller, tenant_b, estate, b_has_data, what):
        params = {"resource": "compute:borealis-gpu-01", "metric": "gpu_utilization"}
        foreign = caller.client.get(self.url(tenant_b.slug, what), params)
        missing = caller.client.get(self.url("no-such-tenant", what), params)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content

    def test_naming_bs_resources_in_as_batch_is_unknown_and_writes_nothing(
        self, caller, tenant_a, tenant_b, estate, b_has_data
    ):
        before_b = self.state_of(tenant_b)
        samples = [
            sample_for("compute:borealis-gpu-01"),
            {**sample_for(""), "resource": None, "compute_id": estate["foreign"].pk},
            {
                "deployment_id": estate["foreign_deployment"].pk,
                "metric": "error_rate",
                "ts": iso(minutes_ago(1)),
                "value": 1,
            },
            sample_for("deployment:borealis-chat-prod"),
        ]
        samples[1].pop("resource")
        response = caller.client.post(
            self.url(tenant_a.slug, "samples"), {"samples": samples}, format="json"
        )
        assert response.status_code == 400
        fields = response.json()["error"]["fields"]
        assert fields["samples.0.resource"] == ["Unknown compute resource 'borealis-gpu-01'."]
        assert fields["samples.1.compute_id"] == [
            f"Unknown compute resource id {estate['foreign'].pk}."
        ]
        assert fields["samples.2.deployment_id"] == [
            f"Unknown deployment id {estate['foreign_deployment'].pk}."
        ]
        assert fields["samples.3.resource"] == ["Unknown deployment 'borealis-chat-prod'."]
        assert stored(tenant_a) == []
        assert self.state_of(tenant_b) == before_b

    def test_a_scrape_naming_bs_host_in_a_is_unknown(self, caller, tenant_a, tenant_b, b_has_data):
        before_b = self.state_of(tenant_b)
        response = caller.client.generic(
            "POST",
            self.url(tenant_a.slug, "prometheus"),
            SCRAPE_OF_B.encode(),
            content_type="text/plain",
        )
        assert response.status_code == 400
        assert stored(tenant_a) == []
        assert self.state_of(tenant_b) == before_b

    def test_a_remote_write_naming_bs_host_in_a_is_unknown(
        self, caller, tenant_a, tenant_b, b_has_data
    ):
        before_b = self.state_of(tenant_b)
        response = remote_write(caller, tenant_a.slug, remote_write_of_b())
        assert response.status_code == 400
        (key,) = response.json()["error"]["fields"]
        assert 'Hostname="borealis-gpu-01"' in key
        assert stored(tenant_a) == []
        assert self.state_of(tenant_b) == before_b

    @pytest.mark.parametrize(
        "params",
        [
            {"resource": "compute:borealis-gpu-01"},
            {"compute_id": "foreign"},
            {"deployment_id": "foreign_deployment"},
        ],
    )
    def test_as_series_never_show_bs_samples(self, caller, tenant_a, estate, b_has_data, params):
        query = {"metric": "gpu_utilization"}
        for key, value in params.items():
            query[key] = estate[value].pk if key.endswith("_id") else value
        if "deployment_id" in query:
            query["metric"] = "error_rate"
        for step in ("raw", "1h", "1d"):
            response = caller.client.get(self.url(tenant_a.slug, "series"), {**query, "step": step})
            assert response.status_code == 400, response.content
            # B's sample is 77.0; the refusal may echo the asked id (775 …), never the value.
            assert b"77.0" not in response.content
            assert "points" not in response.json()
            (field,) = response.json()["error"]["fields"]
            assert field in ("resource", "compute_id", "deployment_id")

    def test_as_series_of_its_own_host_named_like_bs_shows_only_as_samples(
        self, caller, tenant_a, tenant_b, estate, b_has_data
    ):
        # Same hostname in both tenants: A's series is A's host, with A's samples only.
        from tests.inventory.estate import make_gpu_node

        make_gpu_node(tenant_a, hostname="borealis-gpu-01")
        with tenant_scope(tenant_a.id):
            services.telemetry_ingest_batch(
                tenant=tenant_a, samples=[sample_for("compute:borealis-gpu-01", 5.0)]
            )
        body = caller.client.get(
            self.url(tenant_a.slug, "series"),
            {"resource": "compute:borealis-gpu-01", "metric": "gpu_utilization"},
        ).json()
        assert [point["value"] for point in body["points"]] == [5.0]

    def test_staff_of_a_cannot_reach_b(self, engineer_a, tenant_b, b_has_data):
        before = self.state_of(tenant_b)
        for what in ("samples", "policy"):
            response = engineer_a.client.post(self.url(tenant_b.slug, what), {}, format="json")
            assert response.status_code == 404
        response = engineer_a.client.patch(self.url(tenant_b.slug), {"raw_retention_days": 1})
        assert response.status_code == 404
        assert self.state_of(tenant_b) == before

    def test_the_policy_is_read_by_clients_and_changed_by_staff(self, caller, engineer_a, tenant_a):
        assert caller.client.get(self.url(tenant_a.slug)).json() == {
            "raw_retention_days": 30,
            "rollup_retention_days": 400,
            "updated_at": None,
        }
        refused = caller.client.patch(self.url(tenant_a.slug), {"raw_retention_days": 7})
        assert refused.status_code == 403
        changed = engineer_a.client.patch(self.url(tenant_a.slug), {"raw_retention_days": 7})
        assert changed.status_code == 200, changed.content
        assert changed.json()["raw_retention_days"] == 7
        too_long = engineer_a.client.patch(
            self.url(tenant_a.slug), {"raw_retention_days": 90, "rollup_retention_days": 60}
        )
        assert too_long.status_code == 400
        assert "rollup_retention_days" in too_long.json()["error"]["fields"]
        unknown = engineer_a.client.patch(self.url(tenant_a.slug), {"retention": 3})
        assert unknown.status_code == 400
        with tenant_scope(tenant_a.id):
            assert TelemetryPolicy.objects.get().raw_retention_days == 7


def test_an_hour_is_rolled_up_for_its_own_tenant_only(tenant_a, tenant_b, estate):
    hour = (minutes_ago(120)).replace(minute=0, second=0)
    for tenant, resource, value in (
        (tenant_a, "compute:acme-gpu-sat-01", 1.0),
        (tenant_b, "compute:borealis-gpu-01", 99.0),
    ):
        with tenant_scope(tenant.id):
            services.telemetry_ingest_batch(
                tenant=tenant,
                samples=[
                    {**sample_for(resource, value), "ts": iso(hour + dt.timedelta(minutes=5))}
                ],
            )
    with tenant_scope(tenant_a.id):
        services.telemetry_rollup_window(
            tenant=tenant_a, start=hour, end=hour + dt.timedelta(hours=1)
        )
    assert [row[4] for row in rollups(tenant_a)] == [1.0]
    assert rollups(tenant_b) == []
