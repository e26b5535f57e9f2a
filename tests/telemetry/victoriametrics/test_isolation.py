"""The tenant boundary on VictoriaMetrics: one tenant's reads never reach another's series,
whatever the parameters (tenant ids that share digits, metric names, regex characters, ``{}``
and ``"`` in names and label values), and the telemetry isolation harness passes unchanged on
this backend."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

import tests.telemetry.test_isolation as builtin_isolation
from operations.telemetry import selectors
from operations.telemetry.backends.victoriametrics import (
    VictoriaMetricsClient,
    quote,
    series_selector,
    victoriametrics_store,
)
from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
from tenants.scoping import tenant_scope
from tests.telemetry.helpers import url
from tests.telemetry.remote_write_payloads import remote_write
from tests.telemetry.test_isolation import SCRAPE_OF_B, remote_write_of_b

pytestmark = pytest.mark.django_db

GPU = METRICS_BY_NAME["gpu_utilization"].code
HOSTILE = [
    '"} or {__name__=~".+',
    '.*"}',
    "gpu_utilization|.*",
    ".+",
    "\\",
    'x", tenant=~".*',
    "\n}",
    "{}",
]


@pytest.fixture
def queries(monkeypatch):
    """Every query and export selector the store sends, as sent."""
    sent: list[str] = []
    query, export = VictoriaMetricsClient.query, VictoriaMetricsClient.export

    def recording_query(self, text, **kwargs):
        sent.append(text)
        return query(self, text, **kwargs)

    def recording_export(self, selector, **kwargs):
        sent.append(selector)
        return export(self, selector, **kwargs)

    monkeypatch.setattr(VictoriaMetricsClient, "query", recording_query)
    monkeypatch.setattr(VictoriaMetricsClient, "export", recording_export)
    return sent


def write(tenant_id: int, resource_id: int, value: float, moment: dt.datetime, *, kind=1):
    victoriametrics_store().insert_samples([(tenant_id, kind, resource_id, GPU, moment, value)])


def all_reads(tenant_id: int, moment: dt.datetime) -> list:
    """What every read of the store answers for ``tenant_id`` around ``moment``."""
    store = victoriametrics_store()
    window = {"start": moment - dt.timedelta(minutes=5), "end": moment + dt.timedelta(minutes=5)}
    return [
        store.series_points(
            tenant_id=tenant_id, kind=1, resource_id=5, metric=GPU, limit=100, **window
        ),
        store.window_stats(tenant_id=tenant_id, kind=1, metric=GPU, **window),
        store.last_sample_times(
            tenant_id=tenant_id, series=[(1, 5, GPU)], since=window["start"], until=window["end"]
        ),
        store.resources_reporting(tenant_id=tenant_id, since=window["start"]),
    ]


def test_tenants_whose_ids_share_digits_never_see_each_others_series(vm):
    moment = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    # 7, 70, 77 and 17: a prefix, a regex or an unanchored match would mix them up.
    for tenant_id, value in ((7, 1.0), (70, 70.0), (77, 77.0), (17, 17.0)):
        write(tenant_id, 5, value, moment)
    series, window, last, reporting = all_reads(7, moment)
    assert series == [(moment, 1.0)]
    assert [(row[0], row[1], row[2], row[3]) for row in window] == [(5, 1.0, 1.0, 1)]
    assert last == [(1, 5, GPU, moment)]
    assert reporting == [(1, 5)]
    assert all_reads(8, moment) == [[], [], [], []]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_label_value_is_quoted_not_parsed(vm, settings, hostile):
    """``TELEMETRY_INSTANCE`` is the one free-text value in a query (an operator's setting):
    even that is a literal to VictoriaMetrics, never a matcher."""
    moment = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)
    settings.TELEMETRY_INSTANCE = hostile
    write(1, 5, 1.0, moment)
    settings.TELEMETRY_INSTANCE = f"neighbour-{vm.url}"
    write(1, 5, 2.0, moment)
    write(2, 5, 3.0, moment)
    settings.TELEMETRY_INSTANCE = hostile
    series, window, last, _reporting = all_reads(1, moment)
    assert series == [(moment, 1.0)]
    assert [row[1] for row in window] == [1.0]
    assert last == [(1, 5, GPU, moment)]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_only_catalogue_names_and_integers_reach_a_selector(hostile):
    with pytest.raises(ValueError, match="^not"):
        series_selector(1, metrics=[hostile])
    with pytest.raises(ValueError, match="^not"):
        series_selector(1, kinds=[hostile])
    with pytest.raises(ValueError, match="^not"):
        series_selector(1, resource_ids=[hostile])
    with pytest.raises(ValueError, match="^not"):
        series_selector(hostile)


def test_quote_escapes_what_would_end_a_string():
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_api_parameters_never_reach_a_query(
    vm, queries, admin_a, tenant_a, tenant_b, estate, hostile
):
    now = timezone.now().replace(microsecond=0)
    with tenant_scope(tenant_b.id):
        victoriametrics_store().insert_samples(
            [(tenant_b.id, 1, estate["foreign"].pk, GPU, now - dt.timedelta(minutes=1), 77.0)]
        )
    for params in (
        {"resource": f"compute:{hostile}", "metric": "gpu_utilization"},
        {"resource": "compute:acme-gpu-sat-01", "metric": hostile},
        {"compute_id": hostile, "metric": "gpu_utilization"},
        {"compute_id": estate["foreign"].pk, "metric": "gpu_utilization"},
        {"resource": "compute:acme-gpu-sat-01", "metric": "gpu_utilization", "step": hostile},
    ):
        response = admin_a.client.get(url(tenant_a, "series"), params)
        assert response.status_code == 400, response.content
        # B's sample is 77.0; the refusal may echo the asked id (1877 …), never the value.
        assert b"77.0" not in response.content
        assert "points" not in response.json()
    assert all(hostile not in query for query in queries)
    # A well-formed read sends queries bound to A only.
    response = admin_a.client.get(
        url(tenant_a, "series"),
        {"resource": "compute:acme-gpu-sat-01", "metric": "gpu_utilization", "step": "raw"},
    )
    assert response.status_code == 200, response.content
    assert queries
    assert all(f'tenant="{tenant_a.id}"' in query for query in queries)


def test_every_selector_read_carries_the_tenant_matcher(vm, queries, tenant_a, estate):
    now = timezone.now()
    node = estate["node"].pk
    gpu = METRICS_BY_NAME["gpu_utilization"]
    with tenant_scope(tenant_a.id):
        ref = selectors.ResourceRef(ResourceKind.COMPUTE, node, "n")
        selectors.telemetry_series(
            tenant=tenant_a, resource=ref, metric=gpu, start=now - dt.timedelta(hours=1), end=now
        )
        selectors.telemetry_window_stats(
            tenant=tenant_a, kind=1, metric=gpu, start=now - dt.timedelta(hours=1), end=now
        )
        selectors.telemetry_last_sample_times(
            tenant=tenant_a, series=[(1, node, gpu)], since=now - dt.timedelta(hours=1), until=now
        )
        selectors.telemetry_reporting_since(tenant=tenant_a, since=now - dt.timedelta(hours=1))
        victoriametrics_store().rollup_hour(
            tenant_id=tenant_a.id, hour=now.replace(minute=0, second=0, microsecond=0), now=now
        )
    # Groundwork's own series, then dcgm-exporter's by label: export by hostname and by the
    # node's GPU UUIDs, window stats, last times, reporting and the rollup's export.
    assert len(queries) == 11
    for query in queries:
        # Every selector in the query (a query may hold several) starts with the tenant.
        selectors_in_query = query.count("{")
        assert query.count(f'{{tenant="{tenant_a.id}", ') == selectors_in_query, query


class TestTelemetryIsolationOnVictoriaMetrics(builtin_isolation.TestTelemetryIsolation):
    """The built-in store's isolation proofs, with the samples in VictoriaMetrics."""

    @pytest.fixture(autouse=True)
    def _on_victoria_metrics(self, vm):
        return vm

    def test_a_scrape_naming_bs_host_in_a_is_unknown(self, caller, tenant_a, tenant_b, b_has_data):
        """Forwarded, not parsed: stored under A's label, where B's host is no resource of A."""
        before_b = self.state_of(tenant_b)
        response = caller.client.generic(
            "POST",
            self.url(tenant_a.slug, "prometheus"),
            SCRAPE_OF_B.encode(),
            content_type="text/plain",
        )
        assert response.status_code == 202, response.content
        assert self.state_of(tenant_b) == before_b
        assert self.state_of(tenant_a)["victoria_metrics"] == []

    def test_a_remote_write_naming_bs_host_in_a_is_unknown(
        self, caller, tenant_a, tenant_b, b_has_data
    ):
        before_b = self.state_of(tenant_b)
        response = remote_write(caller, tenant_a.slug, remote_write_of_b())
        assert response.status_code == 204, response.content
        assert self.state_of(tenant_b) == before_b
        assert self.state_of(tenant_a)["victoria_metrics"] == []

    def state_of(self, tenant) -> dict:
        state = super().state_of(tenant)
        with tenant_scope(tenant.id):
            state["victoria_metrics"] = victoriametrics_store().resources_reporting(
                tenant_id=tenant.id, since=timezone.now() - dt.timedelta(days=30)
            )
        return state
