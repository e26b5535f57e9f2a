"""The VictoriaMetrics telemetry backend (``TELEMETRY_BACKEND=victoriametrics``).

Writes go to VictoriaMetrics' JSON-lines import API (``/api/v1/import``); reads use the export
API (raw points of one series) and instant MetricsQL queries (``/api/v1/query``: window
statistics, last sample times, reporting resources, hourly rollups). Single node and cluster
speak the same API under different prefixes: ``TELEMETRY_URL`` (single node), or
``TELEMETRY_INSERT_URL`` / ``TELEMETRY_SELECT_URL`` (cluster: ``…/insert/0/prometheus``,
``…/select/0/prometheus``).

Labels, all set here and never taken from a payload:

    ``__name__``     the metric's catalogue name (``gpu_utilization``);
    ``tenant``       the tenant's id;
    ``kind``         ``compute``, ``deployment`` or ``gpu``;
    ``resource_id``  the inventory id of the compute resource, deployment or GPU;
    ``groundwork``   ``TELEMETRY_INSTANCE``, when set (installations sharing one store).

The tenant boundary: every query is built here from integers and catalogue names, through
:func:`series_selector`, which always starts with the exact ``tenant="<id>"`` matcher and
quotes every value; no text a user sent ever reaches a query. Resource names are resolved to
ids in the database (inside the tenant's scope) before a query is built.

Rollups: the hourly rollup job reads an hour's min/max/avg/count per series from
VictoriaMetrics (one query) and upserts them into ``telemetry_rollup`` as the built-in store
does, so every reader of the rollups (stepped series, reports, optimisation, readiness, the
fleet dashboard, monthly costs) is unchanged and stays behind the database's row-level
security. Ingest still marks the hours it touched in ``telemetry_dirty_hour``.

What VictoriaMetrics does differently (see docs/telemetry-backends.md):

- Idempotency comes from VictoriaMetrics' deduplication: run it with
  ``-dedup.minScrapeInterval=1ms`` so a re-sent sample counts once. Ingest cannot tell new
  from re-sent samples: ``inserted`` is what was forwarded (``duplicates`` answers 0).
- Timestamps are kept to the millisecond.
- Raw retention is VictoriaMetrics' own ``-retentionPeriod`` (one for all tenants); the per-
  tenant raw retention only bounds what ingest accepts. Rollup retention is unchanged.
- A write is not part of the database transaction: a request that fails after forwarding
  leaves its samples in VictoriaMetrics (re-sending is harmless).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import urlencode

import requests
import urllib3
from django.conf import settings
from django.db.models import QuerySet
from rest_framework import exceptions

from operations.telemetry.backends import dcgm_read
from operations.telemetry.exceptions import TelemetryUnavailable
from operations.telemetry.metrics import (
    DCGM_FIELDS,
    METRICS,
    METRICS_BY_CODE,
    RESOURCE_KIND_NAMES,
)
from operations.telemetry.models import TelemetryRollup
from operations.telemetry.storage import Blocks, Row, SampleStore, WindowRow, group_blocks
from operations.telemetry.tenant_label import tenant_label_name, tenant_label_value

KIND_LABEL = "kind"
RESOURCE_LABEL = "resource_id"
#: Set on every series and matched by every query when ``TELEMETRY_INSTANCE`` is set: several
#: Groundwork installations (production, staging, a test run) can share one VictoriaMetrics.
INSTANCE_LABEL = "groundwork"
#: The label that tells the statistics of one combined query apart (never stored).
_STAT_LABEL = "gw_stat"
_KINDS_BY_LABEL = {name: code for code, name in RESOURCE_KIND_NAMES.items()}
_METRIC_CODES_BY_NAME = {metric.name: metric.code for metric in METRICS}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
#: Resource ids per query (``-search.maxQueryLen`` is 16 KiB by default).
_IDS_PER_QUERY = 500
#: How far ahead of now ingest accepts samples (5 minutes), with room to spare: a sample
#: stamped slightly ahead still counts as reporting.
_AHEAD = dt.timedelta(hours=1)


#: As requests' adapter: no retry, a connection error raised at once (a dropped keep-alive
#: connection is still replaced by the pool before sending).
_NO_RETRIES = urllib3.Retry(0, read=False)


class TelemetryBackendUnavailable(TelemetryUnavailable):
    """The time-series backend did not answer (or answered with a server error)."""


# --- Building queries: integers and catalogue names only, every value quoted ------------------


def quote(value: str) -> str:
    """``value`` as a MetricsQL string literal: backslash, quote and line breaks escaped."""
    escaped = (
        str(value)
        .replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _integer(value) -> int:
    """``value`` as an int (an id or code), refusing anything else, bools included."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


def _metric_name(code: int) -> str:
    """The catalogue name of ``code``; anything else is refused (never sent as a name)."""
    try:
        return METRICS_BY_CODE[_integer(code)].name
    except KeyError:
        raise ValueError(f"not a metric of the catalogue: {code!r}") from None


def _kind_name(kind: int) -> str:
    try:
        return RESOURCE_KIND_NAMES[_integer(kind)]
    except KeyError:
        raise ValueError(f"not a resource kind: {kind!r}") from None


def _matcher(label: str, values: Sequence[str]) -> str:
    """``label="v"`` for one value, ``label=~"v1|v2"`` (each regex-escaped) for several."""
    if len(values) == 1:
        return f"{label}={quote(values[0])}"
    return f"{label}=~{quote('|'.join(re.escape(value) for value in values))}"


def tenant_matcher(tenant_id: int) -> str:
    """The exact matcher of the tenant's label (``tenant="7"``, or its configured value)."""
    return f"{tenant_label_name()}={quote(tenant_label_value(_integer(tenant_id)))}"


def series_selector(
    tenant_id: int,
    *,
    metrics: Iterable[int] | None = None,
    kinds: Iterable[int] = (),
    resource_ids: Iterable[int] = (),
) -> str:
    """The series selector ``{tenant="<id>", …}`` of the tenant's series.

    Always the exact tenant matcher first; ``metrics`` (codes; None: the whole catalogue),
    ``kinds`` and ``resource_ids`` narrow it. Every value is an integer or a catalogue name,
    converted here, and quoted.
    """
    matchers = [tenant_matcher(tenant_id)]
    if settings.TELEMETRY_INSTANCE:
        matchers.append(f"{INSTANCE_LABEL}={quote(settings.TELEMETRY_INSTANCE)}")
    codes = sorted({_integer(code) for code in metrics}) if metrics is not None else None
    names = [_metric_name(code) for code in codes] if codes is not None else None
    if names is None:
        names = [metric.name for metric in METRICS]
    if not names:
        raise ValueError("no metric to select")
    matchers.append(_matcher("__name__", names))
    kind_names = sorted({_kind_name(kind) for kind in kinds})
    if kind_names:
        matchers.append(_matcher(KIND_LABEL, kind_names))
    ids = sorted({_integer(resource_id) for resource_id in resource_ids})
    if ids:
        matchers.append(_matcher(RESOURCE_LABEL, [str(resource_id) for resource_id in ids]))
    return "{" + ", ".join(matchers) + "}"


def _window(milliseconds: int) -> str:
    return f"[{int(milliseconds)}ms]"


def _stats_query(selector: str, window: str, stats: dict[str, str], *, keep_names: bool) -> str:
    """One instant query for several ``*_over_time`` functions of the same series, told apart
    by the ``gw_stat`` label (``stats``: label value → function)."""
    keep = " keep_metric_names" if keep_names else ""
    return " or ".join(
        f"label_set({function}({selector}{window}){keep}, {quote(_STAT_LABEL)}, {quote(stat)})"
        for stat, function in stats.items()
    )


# --- Time --------------------------------------------------------------------------------------


def to_ms(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _MS


def from_ms(milliseconds: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=int(milliseconds))


def _from_seconds(value: str) -> dt.datetime:
    return from_ms(round(float(value) * 1000))


def _time_param(milliseconds: int) -> str:
    return f"{milliseconds // 1000}.{milliseconds % 1000:03d}"


# --- HTTP --------------------------------------------------------------------------------------


def _environment_settings(url: str) -> dict:
    """What requests reads from the environment for ``url`` on every call (proxies and
    ``no_proxy``, ``REQUESTS_CA_BUNDLE``, ``.netrc``), read once instead."""
    merged = requests.Session().merge_environment_settings(url, {}, None, None, None)
    return {
        "proxies": merged["proxies"],
        "verify": merged["verify"],
        "auth": requests.utils.get_netrc_auth(url),
    }


class VictoriaMetricsClient:
    """The three calls Groundwork makes, on one pooled keep-alive session per process and
    thread (gunicorn's sync workers: one each)."""

    def __init__(self, *, insert_url: str, select_url: str, timeout: float):
        self.insert_url = insert_url.rstrip("/")
        self.select_url = select_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._environment = {
            self.insert_url: _environment_settings(self.insert_url),
            self.select_url: _environment_settings(self.select_url),
        }

    @property
    def _session(self) -> requests.Session:
        local = self._local
        # A forked worker never shares its parent's sockets: a new pool after a fork.
        if getattr(local, "pid", None) != os.getpid():
            session = requests.Session()
            session.trust_env = False  # read once, in _environment
            local.session, local.pid = session, os.getpid()
            local.forward_targets = {}
        return local.session

    def _post(self, base: str, path: str, **kwargs) -> requests.Response:
        url = f"{base}{path}"
        try:
            response = self._session.post(
                url, timeout=self.timeout, **self._environment[base], **kwargs
            )
        except requests.RequestException as error:
            raise TelemetryBackendUnavailable() from error
        if response.status_code >= 500:
            raise TelemetryBackendUnavailable()
        if response.status_code >= 400:
            # A query or payload built here was refused: a defect, not the client's input.
            raise RuntimeError(
                f"VictoriaMetrics refused {url}: {response.status_code} {response.text[:500]}"
            )
        return response

    def forward(
        self, path: str, body: bytes, *, params: list[tuple[str, str]], headers: dict[str, str]
    ) -> None:
        """POST a client's ingest body as is to ``path`` of the insert URL. A refusal (4xx) is
        about the client's body: a 400 in the API's error format; out of reach or 5xx: 503.

        Straight on the urllib3 pool that the session's adapter picks for the insert URL (its
        proxy and TLS settings), without requests' per-call preparation (≈ 0.5 ms of CPU a
        call, against ≈ 0.4 ms for sending 800 KiB)."""
        pool, target, auth = self._forward_target(path)
        try:
            response = pool.urlopen(
                "POST",
                f"{target}?{urlencode(params)}",
                body=body,
                headers={**headers, **auth},
                retries=_NO_RETRIES,
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TelemetryBackendUnavailable() from error
        if response.status >= 500:
            raise TelemetryBackendUnavailable()
        if response.status >= 400:
            text = response.data.decode("utf-8", "replace")
            reason = " ".join(text.split())[:300]
            raise exceptions.ValidationError(
                {"body": [f"The telemetry store refused the body: {reason}"]}
            )

    def _forward_target(self, path: str) -> tuple:
        """(urllib3 pool, request target, auth header) of ``path`` under the insert URL, as
        requests would send it, worked out once per process."""
        session = self._session
        targets = self._local.forward_targets
        found = targets.get(path)
        if found is None or found[0].pool is None:  # new, or closed (evicted by its manager)
            url = f"{self.insert_url}{path}"
            environment = self._environment[self.insert_url]
            request = requests.Request("POST", url, auth=environment["auth"])
            prepared = session.prepare_request(request)
            adapter = session.get_adapter(url)
            pool = adapter.get_connection_with_tls_context(
                prepared, environment["verify"], proxies=environment["proxies"]
            )
            target = adapter.request_url(prepared, environment["proxies"])
            auth = prepared.headers.get("Authorization")
            found = targets[path] = (pool, target, {"Authorization": auth} if auth else {})
        return found

    def import_lines(self, body: bytes) -> None:
        self._post(
            self.insert_url,
            "/api/v1/import",
            data=body,
            headers={"Content-Type": "application/stream+json"},
        )

    def query(self, query: str, *, at_ms: int, fresh: bool = False) -> list[dict]:
        """An instant query at ``at_ms``: its vector, ``[{"metric": {...}, "value": [t, v]}]``.
        ``fresh``: bypass VictoriaMetrics' result cache (late samples count)."""
        data = {"query": query, "time": _time_param(at_ms)}
        if fresh:
            data["nocache"] = "1"
        body = self._post(self.select_url, "/api/v1/query", data=data).json()
        return body["data"]["result"]

    def export(self, selector: str, *, start_ms: int, end_ms: int) -> Iterator[dict]:
        """Raw points of the series matching ``selector`` in [start, end] (both included)."""
        response = self._post(
            self.select_url,
            "/api/v1/export",
            data={
                "match[]": selector,
                "start": _time_param(start_ms),
                "end": _time_param(end_ms),
            },
        )
        for line in response.iter_lines():
            if line:
                yield json.loads(line)


_clients: dict[tuple[str, str, float], VictoriaMetricsClient] = {}


def victoriametrics_client() -> VictoriaMetricsClient:
    """The client for the URLs in settings (one per distinct configuration)."""
    key = (
        settings.TELEMETRY_INSERT_URL or settings.TELEMETRY_URL,
        settings.TELEMETRY_SELECT_URL or settings.TELEMETRY_URL,
        float(settings.TELEMETRY_TIMEOUT_SECONDS),
    )
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = VictoriaMetricsClient(
            insert_url=key[0], select_url=key[1], timeout=key[2]
        )
    return client


# --- The store ---------------------------------------------------------------------------------


def import_body(blocks: Blocks) -> tuple[bytes, int]:
    """The JSON-lines import body of ``blocks`` (one line per block) and its sample count."""
    lines = []
    count = 0
    stamps: dict[dt.datetime, int] = {}  # ts → ms; a batch's instants repeat across its series
    instance = settings.TELEMETRY_INSTANCE
    tenant_label = tenant_label_name()
    tenant_values: dict[int, str] = {}
    for (tenant_id, kind, resource_id, metric, _hour), block in blocks.items():
        tenant_value = tenant_values.get(tenant_id)
        if tenant_value is None:
            tenant_value = tenant_values[tenant_id] = tenant_label_value(tenant_id)
        times = sorted(block)
        for ts in times:
            if ts not in stamps:
                stamps[ts] = to_ms(ts)
        labels = {
            "__name__": _metric_name(metric),
            tenant_label: tenant_value,
            KIND_LABEL: _kind_name(kind),
            RESOURCE_LABEL: str(int(resource_id)),
        }
        if instance:
            labels[INSTANCE_LABEL] = instance
        lines.append(
            json.dumps(
                {
                    "metric": labels,
                    "values": [block[ts] for ts in times],
                    "timestamps": [stamps[ts] for ts in times],
                },
                separators=(",", ":"),
            )
        )
        count += len(times)
    return ("\n".join(lines) + "\n").encode(), count


def _series_key(labels: dict) -> tuple[int, int] | None:
    """(kind, resource id) from a result's labels; None for a series not in our scheme."""
    kind = _KINDS_BY_LABEL.get(labels.get(KIND_LABEL, ""))
    resource = labels.get(RESOURCE_LABEL, "")
    if kind is None or not (resource.isascii() and resource.isdigit()):
        return None
    return kind, int(resource)


def _merge_windows(one, other):
    """Two (min, max, count, first ms, last ms) of the same resource as one (either None)."""
    if one is None:
        return other
    return (
        min(one[0], other[0]),
        max(one[1], other[1]),
        one[2] + other[2],
        min(one[3], other[3]),
        max(one[4], other[4]),
    )


def _merge_rollups(stats: dict | None, points: dict[int, float]) -> dict[str, float]:
    """An hour's {min, max, avg, count} with ``points`` added."""
    values = list(points.values())
    found = {
        "min": min(values),
        "max": max(values),
        "avg": math.fsum(values) / len(values),
        "count": float(len(values)),
    }
    if not stats:
        return found
    count = stats["count"] + found["count"]
    return {
        "min": min(stats["min"], found["min"]),
        "max": max(stats["max"], found["max"]),
        "avg": (stats["avg"] * stats["count"] + found["avg"] * found["count"]) / count,
        "count": count,
    }


def _ids_of(resources: QuerySet) -> set[int]:
    """The ids a one-column query selects (``values("pk")``, ``values_list(…)`` or flat)."""
    ids = set()
    for row in resources:
        if isinstance(row, dict):
            (row,) = row.values()
        elif isinstance(row, tuple):
            (row,) = row
        ids.add(int(row))
    return ids


class VictoriaMetricsSampleStore(SampleStore):
    """:class:`~operations.telemetry.storage.SampleStore` over VictoriaMetrics."""

    vendor = "victoriametrics"
    in_database = False

    @property
    def client(self) -> VictoriaMetricsClient:
        return victoriametrics_client()

    @property
    def search_delay(self) -> dt.timedelta:
        # VictoriaMetrics buffers fresh samples for a second or two before they are searchable.
        return dt.timedelta(seconds=settings.TELEMETRY_SEARCH_DELAY_SECONDS)

    def wait_until_searchable(self) -> None:
        time.sleep(self.search_delay.total_seconds())

    def insert_samples(self, rows: Sequence[Row], *, days: Iterable[dt.date] | None = None) -> int:
        return self.insert_blocks(group_blocks(rows)) if rows else 0

    def insert_blocks(self, blocks: Blocks, *, mark_dirty_hours: bool = False) -> int:
        """Forward ``blocks``; return how many samples were sent (VictoriaMetrics' dedup drops
        re-sent ones; it cannot say which were new)."""
        if not blocks:
            return 0
        body, count = import_body(blocks)
        self.client.import_lines(body)
        return count

    def series_points(self, *, tenant_id, kind, resource_id, metric, start, end, limit):
        selector = series_selector(
            tenant_id, metrics=[metric], kinds=[kind], resource_ids=[resource_id]
        )
        start_ms, end_ms = to_ms(start), to_ms(end)
        if end_ms <= start_ms:
            return []
        points: dict[int, float] = {}
        # Export's end is inclusive; [start, end) ends a millisecond before.
        for line in self.client.export(selector, start_ms=start_ms, end_ms=end_ms - 1):
            for stamp, value in zip(line["timestamps"], line["values"], strict=True):
                points.setdefault(stamp, value)
        family = dcgm_read.dcgm_metric(kind, metric)
        selectors = (
            dcgm_read.resource_selectors(tenant_id, kind, resource_id, family) if family else []
        )
        if selectors:
            found = dcgm_read.dcgm_points(
                self.client, tenant_id, start_ms=start_ms, end_ms=end_ms - 1, selectors=selectors
            )
            for stamp, value in found.get((kind, resource_id, metric), {}).items():
                points.setdefault(stamp, value)
        return [(from_ms(stamp), float(points[stamp])) for stamp in sorted(points)[:limit]]

    def window_stats(
        self,
        *,
        tenant_id: int,
        kind: int,
        metric: int,
        start: dt.datetime,
        end: dt.datetime,
        resources: QuerySet | None = None,
    ) -> list[WindowRow]:
        start_ms, end_ms = to_ms(start), to_ms(end)
        if end_ms < start_ms:
            return []
        wanted = _ids_of(resources) if resources is not None else None
        if wanted is not None and not wanted:
            return []
        # A lookbehind window (t - d, t] at t = end with d = end - start + 1 ms is [start, end].
        query = _stats_query(
            series_selector(tenant_id, metrics=[metric], kinds=[kind]),
            _window(end_ms - start_ms + 1),
            {
                "min": "min_over_time",
                "max": "max_over_time",
                "count": "count_over_time",
                "first": "tfirst_over_time",
                "last": "tlast_over_time",
            },
            keep_names=False,
        )
        stats: dict[int, dict[str, str]] = {}
        for result in self.client.query(query, at_ms=end_ms, fresh=True):
            key = _series_key(result["metric"])
            if key is None or key[0] != kind:
                continue
            stats.setdefault(key[1], {})[result["metric"].get(_STAT_LABEL)] = result["value"][1]
        windows: dict[int, tuple[float, float, int, int, int]] = {}
        for resource_id, found in stats.items():
            if len(found) < 5 or not float(found["count"]):
                continue
            windows[resource_id] = (
                float(found["min"]),
                float(found["max"]),
                int(float(found["count"])),
                round(float(found["first"]) * 1000),
                round(float(found["last"]) * 1000),
            )
        if dcgm_read.dcgm_metric(kind, metric):
            selector = dcgm_read.dcgm_selector(tenant_id, [dcgm_read.dcgm_metric(kind, metric)])
            found = dcgm_read.dcgm_points(
                self.client, tenant_id, start_ms=start_ms, end_ms=end_ms, selectors=[selector]
            )
            for (found_kind, resource_id, code), points in found.items():
                if found_kind == kind and code == int(metric) and points:
                    windows[resource_id] = _merge_windows(
                        windows.get(resource_id), dcgm_read.window_of(points)
                    )
        return [
            (resource_id, low, high, count, from_ms(first), from_ms(last))
            for resource_id, (low, high, count, first, last) in sorted(windows.items())
            if wanted is None or resource_id in wanted
        ]

    def resources_reporting(self, *, tenant_id: int, since: dt.datetime) -> list[tuple[int, int]]:
        at_ms = to_ms(dt.datetime.now(dt.UTC) + _AHEAD)
        since_ms = to_ms(since)
        if at_ms < since_ms:
            return []
        query = (
            f"count by ({KIND_LABEL}, {RESOURCE_LABEL}) "
            f"(count_over_time({series_selector(tenant_id)}{_window(at_ms - since_ms + 1)}))"
        )
        found = {_series_key(result["metric"]) for result in self.client.query(query, at_ms=at_ms)}
        dcgm_query = (
            f"count by ({', '.join(dcgm_read.PLACE_LABELS)}) (count_over_time("
            f"{dcgm_read.dcgm_selector(tenant_id, DCGM_FIELDS)}{_window(at_ms - since_ms + 1)}))"
        )
        results = self.client.query(dcgm_query, at_ms=at_ms)
        for compute_id, gpu_id, _result in dcgm_read.place_results(tenant_id, results):
            found.add((dcgm_read.COMPUTE, compute_id))
            if gpu_id is not None:
                found.add((dcgm_read.GPU, gpu_id))
        return sorted(key for key in found if key is not None)

    def last_sample_times(self, *, tenant_id, series, since, until):
        wanted = {(int(k), int(r), int(m)) for k, r, m in series}
        if not wanted:
            return []
        since_ms, until_ms = to_ms(since), to_ms(until)
        if until_ms < since_ms:
            return []
        kinds = {kind for kind, _, _ in wanted}
        metrics = {metric for _, _, metric in wanted}
        ids = sorted({resource_id for _, resource_id, _ in wanted})
        found = []
        for offset in range(0, len(ids), _IDS_PER_QUERY):
            selector = series_selector(
                tenant_id,
                metrics=metrics,
                kinds=kinds,
                resource_ids=ids[offset : offset + _IDS_PER_QUERY],
            )
            query = (
                f"tlast_over_time({selector}{_window(until_ms - since_ms + 1)}) keep_metric_names"
            )
            for result in self.client.query(query, at_ms=until_ms, fresh=True):
                key = _series_key(result["metric"])
                code = _METRIC_CODES_BY_NAME.get(result["metric"].get("__name__", ""))
                if key is None or code is None or (*key, code) not in wanted:
                    continue
                found.append((key[0], key[1], code, _from_seconds(result["value"][1])))
        families = {dcgm_read.dcgm_metric(k, m) for k, _r, m in wanted} - {None}
        if families:
            latest = {(k, r, m): t for k, r, m, t in found}
            query = (
                f"tlast_over_time({dcgm_read.dcgm_selector(tenant_id, families)}"
                f"{_window(until_ms - since_ms + 1)}) keep_metric_names"
            )
            results = self.client.query(query, at_ms=until_ms, fresh=True)
            for compute_id, gpu_id, result in dcgm_read.place_results(tenant_id, results):
                code = DCGM_FIELDS[result["metric"]["__name__"]].metric.code
                moment = _from_seconds(result["value"][1])
                for key in ((dcgm_read.COMPUTE, compute_id, code), (dcgm_read.GPU, gpu_id, code)):
                    if key in wanted and (key not in latest or latest[key] < moment):
                        latest[key] = moment
            found = [(*key, moment) for key, moment in latest.items()]
        return sorted(found)

    def rollup_hour(self, *, tenant_id: int, hour: dt.datetime, now: dt.datetime) -> int:
        """Read the hour's min/max/avg/count of every series of the tenant from VictoriaMetrics
        and upsert them into the rollup table; return the rows written."""
        hour_ms = to_ms(hour)
        # (t - 1 h, t] at t = the hour's last millisecond is [hour, hour + 1 h).
        at_ms = hour_ms + 3_600_000 - 1
        query = _stats_query(
            series_selector(tenant_id),
            _window(3_600_000),
            {
                "min": "min_over_time",
                "max": "max_over_time",
                "avg": "avg_over_time",
                "count": "count_over_time",
            },
            keep_names=True,
        )
        stats: dict[tuple[int, int, int], dict[str, float]] = {}
        for result in self.client.query(query, at_ms=at_ms, fresh=True):
            labels = result["metric"]
            key = _series_key(labels)
            code = _METRIC_CODES_BY_NAME.get(labels.get("__name__", ""))
            if key is None or code is None:
                continue
            stats.setdefault((*key, code), {})[labels.get(_STAT_LABEL)] = float(result["value"][1])
        stats = {key: found for key, found in stats.items() if len(found) == 4 and found["count"]}
        dcgm = dcgm_read.dcgm_points(
            self.client,
            tenant_id,
            start_ms=hour_ms,
            end_ms=at_ms,
            selectors=[dcgm_read.dcgm_selector(tenant_id, DCGM_FIELDS)],
        )
        for key, points in dcgm.items():
            if points:
                stats[key] = _merge_rollups(stats.get(key), points)
        rollups = [
            TelemetryRollup(
                tenant_id=tenant_id,
                resource_kind=kind,
                resource_id=resource_id,
                metric=code,
                bucket=hour,
                min_value=found["min"],
                max_value=found["max"],
                avg_value=found["avg"],
                sample_count=int(found["count"]),
                computed_at=now,
            )
            for (kind, resource_id, code), found in sorted(stats.items())
        ]
        TelemetryRollup.objects.bulk_create(
            rollups,
            update_conflicts=True,
            unique_fields=["tenant", "resource_kind", "resource_id", "metric", "bucket"],
            update_fields=["min_value", "max_value", "avg_value", "sample_count", "computed_at"],
        )
        return len(rollups)

    def delete_samples_before(self, *, tenant_id: int, cutoff: dt.datetime, batch: int) -> int:
        # VictoriaMetrics keeps raw samples for its own -retentionPeriod, for every tenant.
        return 0


_STORE = VictoriaMetricsSampleStore()


def victoriametrics_store() -> VictoriaMetricsSampleStore:
    return _STORE
