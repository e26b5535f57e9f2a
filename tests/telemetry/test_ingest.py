"""POST telemetry/samples: the JSON batch format, all or nothing, idempotent, size limits."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from msp.api.throttling import DEFAULT_INGEST_RATE, IngestRateThrottle, PerTokenRateThrottle
from operations.telemetry import services
from operations.telemetry.metrics import ResourceKind
from operations.telemetry.storage import sample_store
from tenants.models import MspRole, TenantRole
from tenants.scoping import tenant_scope
from tests.conftest import Actor
from tests.factories import make_member, make_staff, make_token
from tests.telemetry.helpers import code, dirty_hours, iso, minutes_ago, stored, url

pytestmark = pytest.mark.django_db

COMPUTE, DEPLOYMENT = ResourceKind.COMPUTE.value, ResourceKind.DEPLOYMENT.value


def sample(value=50.0, *, minutes=0, metric="gpu_utilization", resource="compute:acme-gpu-sat-01"):
    return {"resource": resource, "metric": metric, "ts": iso(minutes_ago(minutes)), "value": value}


def post(actor, tenant, samples, **extra):
    return actor.client.post(url(tenant, "samples"), {"samples": samples}, format="json", **extra)


def post_raw(actor, tenant, body: bytes, **headers):
    return actor.client.generic(
        "POST", url(tenant, "samples"), body, content_type="application/json", **headers
    )


def fields_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["status"] == response.status_code
    return body["error"].get("fields", {})


class TestHappyPath:
    def test_a_batch_is_stored_and_counted(self, admin_a, tenant_a, estate):
        response = post(admin_a, tenant_a, [sample(50 + i, minutes=i) for i in range(3)])
        assert response.status_code == 200, response.content
        assert response.json() == {"received": 3, "inserted": 3, "duplicates": 0}
        rows = stored(tenant_a)
        assert [row[:3] for row in rows] == [
            (COMPUTE, estate["node"].pk, code("gpu_utilization"))
        ] * 3
        assert sorted(row[4] for row in rows) == [50.0, 51.0, 52.0]

    def test_natural_keys_ids_and_time_formats_all_resolve(self, admin_a, tenant_a, estate):
        moment = minutes_ago(2)
        node, deployment = estate["node"].pk, estate["deployment"].pk
        in_paris = moment.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
        samples = [
            {**sample(2810, metric="gpu_power_watts"), "ts": iso(moment)},
            {"compute_id": node, "metric": "gpu_temperature_celsius", "ts": moment.timestamp(),
             "value": 61},
            {"resource": "deployment:fraud-scoring-prod", "metric": "inference_latency_p95_ms",
             "ts": in_paris, "value": 87.5},
            {"deployment_id": deployment, "metric": "error_rate", "ts": int(moment.timestamp()),
             "value": 0},
            {"deployment_id": deployment, "metric": "cost_per_hour", "ts": iso(moment),
             "value": 4.2},
        ]  # fmt: skip
        response = post(admin_a, tenant_a, samples)
        assert response.status_code == 200, response.content
        assert stored(tenant_a) == [
            (COMPUTE, node, code("gpu_power_watts"), moment, 2810.0),
            (COMPUTE, node, code("gpu_temperature_celsius"), moment, 61.0),
            (DEPLOYMENT, deployment, code("inference_latency_p95_ms"), moment, 87.5),
            (DEPLOYMENT, deployment, code("error_rate"), moment, 0.0),
            (DEPLOYMENT, deployment, code("cost_per_hour"), moment, 4.2),
        ]

    def test_touched_hours_are_marked_for_the_rollup(self, admin_a, tenant_a, estate):
        hour = minutes_ago(180).replace(minute=0, second=0)
        samples = [
            {**sample(value), "ts": iso(hour + dt.timedelta(minutes=minutes))}
            for value, minutes in ((1, 5), (2, 65), (3, 70))
        ]
        post(admin_a, tenant_a, samples)
        assert dirty_hours(tenant_a) == {hour, hour + dt.timedelta(hours=1)}

    def test_a_gzip_body_is_accepted(self, admin_a, tenant_a, estate):
        body = gzip.compress(
            json.dumps({"samples": [sample(i, minutes=i) for i in range(4)]}).encode()
        )
        response = post_raw(admin_a, tenant_a, body, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 200, response.content
        assert response.json()["inserted"] == 4
        assert len(stored(tenant_a)) == 4

    def test_an_msp_engineer_may_ingest(self, engineer_a, tenant_a, estate):
        assert post(engineer_a, tenant_a, [sample()]).status_code == 200

    def test_the_trailing_slash_is_optional(self, admin_a, tenant_a, estate):
        response = admin_a.client.post(
            url(tenant_a, "samples") + "/", {"samples": [sample()]}, format="json"
        )
        assert response.status_code == 200


class TestIdempotence:
    def test_re_sending_stores_nothing_twice(self, admin_a, tenant_a, estate):
        samples = [sample(i, minutes=i) for i in range(5)]
        assert post(admin_a, tenant_a, samples[:3]).json()["inserted"] == 3
        again = post(admin_a, tenant_a, samples)
        assert again.status_code == 200
        assert again.json() == {"received": 5, "inserted": 2, "duplicates": 3}
        third = post(admin_a, tenant_a, samples)
        assert third.json() == {"received": 5, "inserted": 0, "duplicates": 5}
        assert len(stored(tenant_a)) == 5

    def test_the_first_of_two_equal_samples_in_a_batch_wins(self, admin_a, tenant_a, estate):
        first, second = sample(10), sample(20)
        response = post(admin_a, tenant_a, [first, second])
        assert response.json() == {"received": 2, "inserted": 1, "duplicates": 1}
        assert [row[4] for row in stored(tenant_a)] == [10.0]

    def test_the_same_instant_written_differently_is_the_same_sample(
        self, admin_a, tenant_a, estate
    ):
        moment = minutes_ago(3)
        as_text = {**sample(), "ts": iso(moment)}
        as_offset = {
            **sample(),
            "ts": moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(),
        }
        as_number = {**sample(), "ts": moment.timestamp()}
        response = post(admin_a, tenant_a, [as_text, as_offset, as_number])
        assert response.json() == {"received": 3, "inserted": 1, "duplicates": 2}

    def test_a_duplicate_batch_marks_no_hour(self, admin_a, tenant_a, estate):
        samples = [sample()]
        post(admin_a, tenant_a, samples)
        with tenant_scope(tenant_a.id):
            services.telemetry_rollup_pending(tenant=tenant_a)
        post(admin_a, tenant_a, samples)
        assert dirty_hours(tenant_a) == set()


class TestAllOrNothing:
    def test_every_problem_is_named_and_nothing_is_written(self, admin_a, tenant_a, estate):
        future = iso(minutes_ago(-30))
        samples = [
            sample(1),
            {**sample(), "resource": "compute:nope"},
            {**sample(), "metric": "gpu_utilisation"},
            sample(101),
            {**sample(), "ts": future},
            {**sample(), "ts": "yesterday"},
            {**sample(), "ts": "2026-11-25T10:00:00"},
            {**sample(), "resource": "rack:7"},
            {**sample(), "value": "93.5"},
            "not an object",
            {**sample(), "valeu": 3},
            {"metric": "gpu_utilization", "ts": iso(minutes_ago()), "value": 1},
            {**sample(), "compute_id": estate["node"].pk},
            {**sample(metric="error_rate")},
            {"compute_id": "12", "metric": "gpu_utilization", "ts": iso(minutes_ago()), "value": 1},
            {"resource": "compute:acme-gpu-sat-01"},
            {**sample(), "value": True},
            {**sample(), "ts": iso(minutes_ago(60 * 24 * 31))},
            sample(2),
        ]
        response = post(admin_a, tenant_a, samples)
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid"
        assert fields_of(response) == {
            "samples.1.resource": ["Unknown compute resource 'nope'."],
            "samples.2.metric": ["Unknown metric 'gpu_utilisation'."],
            "samples.3.value": ["Out of range for gpu_utilization: 0 to 100."],
            "samples.4.ts": ["More than 5 minutes in the future."],
            "samples.5.ts": [services._TS_FORMAT],
            "samples.6.ts": ["Give the time zone: a UTC offset or 'Z'."],
            "samples.7.resource": [services._RESOURCE_FORMAT],
            "samples.8.value": ["Expected a number."],
            "samples.9": ["Expected an object with a resource, metric, ts and value."],
            "samples.10.valeu": ["Unknown field."],
            "samples.11.resource": [services._REFERENCE_HELP],
            "samples.12.resource": [services._REFERENCE_HELP],
            "samples.13.metric": ["Metric 'error_rate' does not apply to compute resources."],
            "samples.14.compute_id": ["Expected an integer id."],
            "samples.15.metric": ["This field is required."],
            "samples.15.ts": ["This field is required."],
            "samples.15.value": ["This field is required."],
            "samples.16.value": ["Expected a number."],
            "samples.17.ts": ["Older than this tenant's raw retention (30 days)."],
        }
        assert stored(tenant_a) == []
        assert dirty_hours(tenant_a) == set()

    def test_lists_and_objects_in_place_of_values_are_named(self, admin_a, tenant_a, estate):
        samples = [
            {**sample(), "resource": ["compute:acme-gpu-sat-01"]},
            {**sample(), "resource": {"hostname": "acme-gpu-sat-01"}},
            {**sample(), "metric": ["gpu_utilization"]},
            {**sample(), "ts": [iso(minutes_ago())]},
            {**sample(), "value": {"avg": 3}},
        ]
        response = post(admin_a, tenant_a, samples)
        assert response.status_code == 400, response.content
        assert fields_of(response) == {
            "samples.0.resource": [services._RESOURCE_FORMAT],
            "samples.1.resource": [services._RESOURCE_FORMAT],
            "samples.2.metric": ["Unknown metric '['gpu_utilization']'."],
            "samples.3.ts": [services._TS_FORMAT],
            "samples.4.value": ["Expected a number."],
        }
        assert stored(tenant_a) == []

    @pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
    def test_nan_and_infinities_are_refused(self, admin_a, tenant_a, estate, constant):
        text = json.dumps({"samples": [sample(1), sample(2, minutes=1)]})
        body = text.replace('"value": 2}', f'"value": {constant}}}', 1).encode()
        assert constant.encode() in body
        response = post_raw(admin_a, tenant_a, body)
        assert response.status_code == 400
        assert fields_of(response) == {
            "samples.1.value": ["Expected a finite number (not NaN or infinity)."]
        }
        assert stored(tenant_a) == []

    def test_a_deployment_metric_on_a_deployment_and_not_on_compute(
        self, admin_a, tenant_a, estate
    ):
        good = sample(
            80, metric="inference_latency_p95_ms", resource="deployment:fraud-scoring-prod"
        )
        bad = sample(80, metric="gpu_utilization", resource="deployment:fraud-scoring-prod")
        response = post(admin_a, tenant_a, [good, bad])
        assert fields_of(response) == {
            "samples.1.metric": ["Metric 'gpu_utilization' does not apply to deployments."]
        }

    def test_many_errors_are_listed_up_to_a_limit_and_counted(self, admin_a, tenant_a, estate):
        samples = [{**sample(), "metric": "nope"} for _ in range(150)]
        fields = fields_of(post(admin_a, tenant_a, samples))
        assert len(fields) == 101
        assert fields["samples"] == ["150 samples are invalid; the first 100 are listed."]
        assert "samples.99.metric" in fields
        assert "samples.100.metric" not in fields

    def test_a_retention_override_moves_the_oldest_accepted_time(self, admin_a, tenant_a, estate):
        old = sample(minutes=60 * 24 * 40)
        assert post(admin_a, tenant_a, [old]).status_code == 400
        with tenant_scope(tenant_a.id):
            services.telemetry_policy_update(tenant=tenant_a, raw_retention_days=60)
        assert post(admin_a, tenant_a, [old]).status_code == 200


class TestBodyShape:
    @pytest.mark.parametrize(
        ("document", "fields"),
        [
            ({"rows": []}, {"rows": ["Unknown field."], "samples": ["This field is required."]}),
            ({"samples": {}}, {"samples": ["Expected a list of samples."]}),
            ({"samples": []}, {"samples": ["Send at least one sample."]}),
            ([], {"samples": ["This field is required."]}),
        ],
        ids=["missing", "not-a-list", "empty", "not-an-object"],
    )
    def test_the_envelope_is_checked(self, admin_a, tenant_a, estate, document, fields):
        response = admin_a.client.post(url(tenant_a, "samples"), document, format="json")
        assert response.status_code == 400
        assert fields_of(response) == fields

    def test_malformed_json_is_a_parse_error(self, admin_a, tenant_a, estate):
        response = post_raw(admin_a, tenant_a, b'{"samples": [')
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "parse_error"

    def test_another_media_type_is_415(self, admin_a, tenant_a, estate):
        response = admin_a.client.generic(
            "POST", url(tenant_a, "samples"), b"a,b\n", content_type="text/csv"
        )
        assert response.status_code == 415
        assert response.json()["error"]["status"] == 415

    def test_an_unknown_content_encoding_is_415(self, admin_a, tenant_a, estate):
        response = post_raw(admin_a, tenant_a, b"{}", HTTP_CONTENT_ENCODING="br")
        assert response.status_code == 415

    def test_broken_gzip_is_a_parse_error(self, admin_a, tenant_a, estate):
        body = gzip.compress(json.dumps({"samples": [sample()]}).encode())
        for broken in (b"not gzip at all", body[:-12]):
            response = post_raw(admin_a, tenant_a, broken, HTTP_CONTENT_ENCODING="gzip")
            assert response.status_code == 400
            assert response.json()["error"]["code"] == "parse_error"

    def test_the_batch_limit(self, admin_a, tenant_a, estate, monkeypatch):
        monkeypatch.setattr(services, "MAX_BATCH", 5)
        response = post(admin_a, tenant_a, [sample(i, minutes=i) for i in range(6)])
        assert response.status_code == 400
        assert fields_of(response) == {"samples": ["At most 5 samples per batch; got 6."]}
        assert stored(tenant_a) == []

    def test_a_full_batch_of_ten_thousand_is_accepted_and_one_more_is_not(
        self, admin_a, tenant_a, estate, django_assert_max_num_queries
    ):
        node = estate["node"].pk
        start = minutes_ago(60 * 24 * 2)
        samples = [
            {
                "compute_id": node,
                "metric": "gpu_utilization",
                "ts": iso(start + dt.timedelta(seconds=i)),
                "value": i % 100,
            }
            for i in range(services.MAX_BATCH)
        ]
        with transaction.atomic():
            last = start + dt.timedelta(seconds=services.MAX_BATCH)
            sample_store().ensure_partitions({start.date(), last.date()})
        # Queries do not grow with the batch: token, tenant, scope, policy, resources, the
        # partition check and the hour markers (the raw COPY statements are not counted).
        with django_assert_max_num_queries(16):
            response = post(admin_a, tenant_a, samples)
        assert response.status_code == 200, response.content[:500]
        assert response.json()["inserted"] == services.MAX_BATCH
        too_many = post(admin_a, tenant_a, [*samples, samples[0]])
        assert too_many.status_code == 400
        assert list(fields_of(too_many)) == ["samples"]


class TestSizeLimits:
    def test_a_body_over_the_upload_limit_is_413(self, admin_a, tenant_a, estate, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
        body = json.dumps({"samples": [sample(i, minutes=i) for i in range(40)]}).encode()
        assert len(body) > 2_000
        response = post_raw(admin_a, tenant_a, body)
        assert response.status_code == 413
        assert response.json() == {
            "error": {
                "status": 413,
                "code": "payload_too_large",
                "message": "The request body is too large.",
            }
        }
        assert stored(tenant_a) == []

    def test_a_gzip_bomb_is_413_while_inflating(self, admin_a, tenant_a, estate, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
        # 64 MiB of zeros compress to about 64 KiB: within the limit on the wire.
        bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
        assert len(bomb) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        response = post_raw(admin_a, tenant_a, bomb, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert error["message"] == f"The decompressed body exceeds {64 * 1024} bytes."
        assert stored(tenant_a) == []

    def test_a_gzip_body_inflating_past_the_limit_is_413(self, admin_a, tenant_a, estate, settings):
        samples = [sample(i % 100, minutes=i) for i in range(200)]
        body = json.dumps({"samples": samples}).encode()
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body) - 1
        compressed = gzip.compress(body)
        response = post_raw(admin_a, tenant_a, compressed, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)
        response = post_raw(admin_a, tenant_a, compressed, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 200


class TestWhoMayIngest:
    @pytest.mark.parametrize("scopes", [("read",), ("write",), ("read", "write")])
    def test_a_token_without_the_ingest_scope_is_refused(self, tenant_a, estate, scopes):
        user = make_member(tenant_a, TenantRole.ADMIN)
        actor = Actor(user, make_token(user, scopes=scopes))
        response = post(actor, tenant_a, [sample()])
        assert response.status_code == 403
        assert response.json()["error"]["message"] == "This API token lacks the 'ingest' scope."
        assert stored(tenant_a) == []

    def test_an_ingest_only_token_may_ingest(self, tenant_a, estate):
        user = make_member(tenant_a, TenantRole.MEMBER)
        actor = Actor(user, make_token(user, scopes=("ingest",)))
        assert post(actor, tenant_a, [sample()]).status_code == 200

    @pytest.mark.parametrize("who", ["viewer", "analyst"])
    def test_read_only_roles_may_not_ingest_even_with_the_scope(self, tenant_a, estate, who):
        if who == "viewer":
            user = make_member(tenant_a, TenantRole.VIEWER)
        else:
            user = make_staff(tenant_a, role=MspRole.ANALYST)
        actor = Actor(user, make_token(user, scopes=("read", "ingest")))
        assert post(actor, tenant_a, [sample()]).status_code == 403
        assert stored(tenant_a) == []

    def test_anonymous_callers_are_refused(self, client, tenant_a, estate):
        response = client.post(
            url(tenant_a, "samples"), {"samples": []}, content_type="application/json"
        )
        assert response.status_code == 401


class TestServiceGuards:
    def test_the_service_refuses_to_run_outside_the_tenants_scope(self, tenant_a, tenant_b, estate):
        with tenant_scope(tenant_b.id), pytest.raises(RuntimeError, match="tenant_scope"):
            services.telemetry_ingest_batch(tenant=tenant_a, samples=[sample()])
        assert stored(tenant_a) == []

    def test_the_service_raises_a_validation_error(self, tenant_a, estate):
        with tenant_scope(tenant_a.id), pytest.raises(ValidationError) as caught:
            services.telemetry_ingest_batch(tenant=tenant_a, samples=[{**sample(), "value": None}])
        assert caught.value.message_dict == {"samples.0.value": ["Expected a number."]}


class TestThrottle:
    @pytest.fixture
    def two_a_minute(self, monkeypatch):
        rates = {"token": "2/minute", "ingest": "2/minute"}
        monkeypatch.setattr(PerTokenRateThrottle, "THROTTLE_RATES", rates)
        # Fresh buckets: ids repeat across rolled-back tests, and the cache outlives them.
        fresh = f"throttle_{uuid.uuid4().hex}_%(scope)s_%(ident)s"
        monkeypatch.setattr(PerTokenRateThrottle, "cache_format", fresh)

    def test_ingest_has_its_own_bucket_apart_from_the_api(self, two_a_minute, tenant_a, estate):
        actor = Actor(*_ingest_token(tenant_a))
        batches = [[sample(minutes=m)] for m in range(3)]
        assert [post(actor, tenant_a, batch).status_code for batch in batches] == [200, 200, 429]
        assert len(stored(tenant_a)) == 2
        # The token's API budget is untouched by ingest, and spending it leaves ingest alone.
        api = url(tenant_a, "metrics")
        assert [actor.client.get(api).status_code for _ in range(3)] == [200, 200, 429]

    def test_the_ingest_rate_falls_back_to_a_default(self, monkeypatch):
        monkeypatch.setattr(PerTokenRateThrottle, "THROTTLE_RATES", {"token": "5/minute"})
        assert IngestRateThrottle().rate == DEFAULT_INGEST_RATE


def _ingest_token(tenant):
    user = make_member(tenant, TenantRole.ADMIN)
    return user, make_token(user, tenant=tenant, scopes=["read", "ingest"])
