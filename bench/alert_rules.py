"""Benchmark one alert rule's window read on PostgreSQL: the sample blocks against the view.

Not a test (pytest collects ``test_*.py`` only); run it by hand:

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork_alerts \\
        .venv/bin/python bench/alert_rules.py

A tenant with ``--hosts`` GPU nodes (default 100) gets ``--days`` (default 3) of 5-minute
samples of four metrics through the ingest service (so they are stored as the app stores them:
series blocks). Then the same 15-minute window of ``gpu_utilization`` is aggregated per
resource, ``--rounds`` times each (median counts):

(a) through the ``telemetry_sample`` view with the ORM (``SampleStore.window_stats``, the
    portable read: the view unnests every block of the series, whatever its time, before the
    time filter applies);
(b) with ``alert_window_stats`` (reads only the blocks that overlap the window).

Both must give the same rows. Then no-data (silence) rules, every host silent for 20 minutes:
the last-sample read of every (host, metric) series through per-series probes
(``telemetry_last_sample_times``) against a grouped scan of every block in the rule's memory
span (both must agree), and an evaluation with one silence rule against one with eight (the
same number of queries). It works in a throwaway database (``<name>_alert_bench``, created,
migrated and dropped) and a temporary ``GROUNDWORK_VAR_DIR``. The last lines are
``evaluate: <ms> for <rules> rules``, ``silence-evaluate: …``,
``silence-read (<n> series): scan=<ms> probe=<ms> ratio=<scan/probe>`` and
``alert-window: a=<ms> b=<ms> ratio=<a/b>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

METRICS = ("gpu_utilization", "gpu_power_watts", "gpu_temperature_celsius", "gpu_tensor_active")


def _timed(work, rounds: int):
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _run(args) -> None:
    from django.utils import timezone

    from operations.incidents import alerting
    from operations.incidents.models import AlertRule
    from operations.incidents.selectors import alert_window_stats
    from operations.inventory import services as inventory
    from operations.telemetry.selectors import WindowStats
    from operations.telemetry.services import MAX_BATCH, telemetry_ingest_batch
    from operations.telemetry.storage import SampleStore
    from tenants import services as tenants
    from tenants.scoping import tenant_scope

    tenant = tenants.tenant_create(name="Bench", slug="bench")
    now = timezone.now().replace(second=0, microsecond=0)
    now -= dt.timedelta(minutes=now.minute % 5)
    with tenant_scope(tenant.id):
        for host in range(args.hosts):
            inventory.compute_create(
                tenant=tenant, hostname=f"gpu-{host:03}", kind="gpu_node", gpu_count=8
            )
    steps = args.days * 288
    samples = [
        {
            "resource": f"compute:gpu-{host:03}",
            "metric": metric,
            "ts": (now - dt.timedelta(minutes=5 * step)).isoformat(),
            "value": 90 + (host + step) % 10 if metric == "gpu_utilization" else 50.0,
        }
        for step in range(steps)
        for host in range(args.hosts)
        for metric in METRICS
    ]
    # The last ``--live-hours`` arrive as agents push them: one batch per 5-minute step, so
    # one block per series and step (the older history in full batches: fewer, longer blocks).
    live_from = (now - dt.timedelta(hours=args.live_hours)).isoformat()
    history = [sample for sample in samples if sample["ts"] <= live_from]
    live: dict[str, list[dict]] = {}
    for sample in samples:
        if sample["ts"] > live_from:
            live.setdefault(sample["ts"], []).append(sample)
    print(f"ingesting {len(samples):,} samples ({len(live)} live pushes) …", flush=True)
    for offset in range(0, len(history), MAX_BATCH):
        with tenant_scope(tenant.id):
            telemetry_ingest_batch(tenant=tenant, samples=history[offset : offset + MAX_BATCH])
    for ts in sorted(live):
        with tenant_scope(tenant.id):
            telemetry_ingest_batch(tenant=tenant, samples=live[ts])
    del samples, history, live

    start, end = now - dt.timedelta(minutes=15), now

    def through_the_view():
        with tenant_scope(tenant.id):
            rows = SampleStore().window_stats(
                tenant_id=tenant.id, kind=1, metric=1, start=start, end=end
            )
            return [WindowStats(*row) for row in rows]

    rule = AlertRule(
        tenant=tenant, name="b", metric="gpu_utilization", condition="above", threshold=95
    )

    def through_the_blocks():
        with tenant_scope(tenant.id):
            return alert_window_stats(tenant=tenant, rule=rule, start=start, end=end)

    view_ms, view_rows = _timed(through_the_view, args.rounds)
    block_ms, block_rows = _timed(through_the_blocks, args.rounds)
    assert view_rows == block_rows, "the two reads disagree"
    assert len(block_rows) == args.hosts

    with tenant_scope(tenant.id):
        for threshold in (80, 95, 99):
            alerting.alert_rule_create(
                tenant=tenant,
                name=f"above {threshold}",
                metric="gpu_utilization",
                condition="above",
                threshold=threshold,
            )

    def evaluate():
        with tenant_scope(tenant.id):
            return alerting.alert_rules_evaluate(tenant=tenant, as_of=now)

    first_ms, first = _timed(evaluate, 1)  # opens the incidents
    again_ms, _ = _timed(evaluate, args.rounds)  # still firing: reads only
    print(f"first evaluation opened {first.count('opened')} incidents in {first_ms:.0f} ms")
    print(f"evaluate: {again_ms:.1f} ms for 3 rules over {args.hosts} resources")
    _silence(args, tenant, now)
    # The figure: the window read through the per-sample view (a) against the blocks (b).
    print(f"alert-window: a={view_ms:.1f} b={block_ms:.1f} ratio={view_ms / block_ms:.1f}")


# The read a per-series probe replaces: every block header of the tenant in the memory span,
# grouped by series (its cost grows with how often agents push, the probe's does not).
_SCAN_LAST_SAMPLES = """
    SELECT b.resource_kind, b.resource_id, u.metric, max(u.ts)
    FROM telemetry_sample_block b CROSS JOIN LATERAL unnest(b.metrics, b.ts) AS u(metric, ts)
    WHERE b.tenant_id = %(tenant)s AND b.ts_start > %(from)s AND b.ts_start <= %(until)s
        AND b.ts_end >= %(since)s
    GROUP BY b.resource_kind, b.resource_id, u.metric
"""


def _silence(args, tenant, now) -> None:
    """No-data rules: the last-sample read (probes against a grouped scan of the blocks), and
    an evaluation with one silence rule against one with eight (same queries, Python aside)."""
    from django.db import connection

    from operations.incidents import alerting
    from operations.incidents.models import AlertRule
    from operations.incidents.selectors import SILENCE_MEMORY
    from operations.inventory.models import ComputeResource
    from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
    from operations.telemetry.selectors import telemetry_last_sample_times
    from tenants.scoping import tenant_scope

    as_of = now + dt.timedelta(minutes=20)  # every host silent since ``now``
    since = as_of - dt.timedelta(minutes=15) - SILENCE_MEMORY
    with tenant_scope(tenant.id):
        hosts = list(ComputeResource.objects.values_list("pk", flat=True))
        AlertRule.objects.filter(tenant=tenant).delete()
    series = [(ResourceKind.COMPUTE, pk, METRICS_BY_NAME[name]) for pk in hosts for name in METRICS]

    def probe():
        with tenant_scope(tenant.id):
            return telemetry_last_sample_times(
                tenant=tenant, series=series, since=since, until=as_of
            )

    def scan():
        with tenant_scope(tenant.id), connection.cursor() as cursor:
            cursor.execute(
                _SCAN_LAST_SAMPLES,
                {
                    "tenant": tenant.id,
                    "since": since,
                    "until": as_of,
                    "from": since - dt.timedelta(hours=1),
                },
            )
            return {
                (kind, resource_id, code): at for kind, resource_id, code, at in cursor.fetchall()
            }

    probe_ms, probed = _timed(probe, args.rounds)
    scan_ms, scanned = _timed(scan, args.rounds)
    codes = {metric.name: metric.code for metric in METRICS_BY_NAME.values()}
    assert {(k, r, codes[m]): at for (k, r, m), at in probed.items()} == scanned
    assert len(probed) == len(series)

    def evaluate_silence():
        queries = []

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with tenant_scope(tenant.id), connection.execute_wrapper(count):
            evaluation = alerting.alert_rules_evaluate(tenant=tenant, as_of=as_of)
        return evaluation, len(queries)

    def add_rule(index: int, metric: str) -> None:
        with tenant_scope(tenant.id):
            alerting.alert_rule_create(
                tenant=tenant,
                name=f"silent {index}",
                metric=metric,
                condition="no_data",
                window_minutes=15,
                resource_pattern="gpu-*" if index % 2 else "",
            )

    add_rule(0, METRICS[0])
    _timed(evaluate_silence, 1)  # opens the incidents
    one_ms, (one, one_queries) = _timed(evaluate_silence, args.rounds)
    for index in range(1, 8):
        add_rule(index, METRICS[index % len(METRICS)])
    _timed(evaluate_silence, 1)
    eight_ms, (eight, eight_queries) = _timed(evaluate_silence, args.rounds)
    print(
        f"silence-evaluate: 1 rule {one_ms:.1f} ms ({one_queries} queries, "
        f"{len(one.outcomes)} firing), 8 rules {eight_ms:.1f} ms ({eight_queries} queries, "
        f"{len(eight.outcomes)} firing)"
    )
    print(
        f"silence-read ({len(series)} series): scan={scan_ms:.1f} probe={probe_ms:.1f} "
        f"ratio={scan_ms / probe_ms:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--live-hours",
        type=int,
        default=0,
        help="ingest the last hours one 5-minute push at a time, as agents send them",
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from bench.support import recreate_database, with_database

    name = urlsplit(url).path.lstrip("/") + "_alert_bench"
    admin_url = with_database(url, "postgres")
    var_dir = tempfile.mkdtemp(prefix="groundwork-alert-bench-")
    recreate_database(admin_url, name)
    try:
        os.environ.update(
            DATABASE_URL=with_database(url, name),
            GROUNDWORK_VAR_DIR=var_dir,
            DJANGO_SETTINGS_MODULE="msp.settings",
            LOG_LEVEL="WARNING",
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(admin_url, name, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
