"""Benchmark the optimisation scan against merely reading the rows it covers.

One tenant with ``--nodes`` GPU nodes (default 200, in clusters of 8) and 14 days of hourly
rollups for utilisation, memory used and cost (``nodes × 336 × 3`` rows), written directly as
rollups. In one run:

(a) baseline: read every rollup row the scan's windows cover into Python (what a detector that
    works row by row would have to do before any arithmetic);
(b) the real scan: ``optimisation_run_for_tenant`` (all five detectors, the upsert, the audit).

Each part runs ``--rounds`` times; the median counts. The last line is
``optimisation scan: a=<s> b=<s> ratio=<b/a> queries=<reads of one scan>``: below 1, the
set-based scan costs less than reading its input row by row.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python \\
        bench/optimisation.py

It works in a throwaway database (``<name>_optim_bench``, created, migrated and dropped) and a
temporary ``GROUNDWORK_VAR_DIR``.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import recreate_database, setup_django, with_database  # noqa: E402

BOOKKEEPING = ("SELECT set_config", "SELECT pg_advisory_xact_lock")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", action="store_true", help="time each query of a scan")
    return parser.parse_args()


def build_estate(nodes: int, days: int):
    from django.utils import timezone

    from operations.inventory.models import ComputeKind
    from operations.inventory.services import compute_create
    from operations.optimisation.detectors import COMPUTE, COST, MEMORY_USED, UTILISATION
    from operations.telemetry.models import TelemetryRollup
    from tenants.scoping import tenant_scope
    from tenants.services import tenant_create

    tenant = tenant_create(name="Bench", slug="bench")
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant.id):
        clusters = [
            compute_create(tenant=tenant, hostname=f"cluster-{i}", kind=ComputeKind.GPU_CLUSTER)
            for i in range((nodes + 7) // 8)
        ]
        rows = []
        for n in range(nodes):
            node = compute_create(
                tenant=tenant,
                hostname=f"node-{n}",
                kind=ComputeKind.GPU_NODE,
                cluster=clusters[n // 8],
                gpu_count=8,
                gpu_memory_gb=80,
                hourly_cost="20.0000",
            )
            base = 0.5 if n % 10 == 0 else 20 + (n % 7) * 10
            for hour in range(days * 24):
                bucket = now - dt.timedelta(hours=hour + 1)
                utilisation = base + (hour % 24) / 3
                for metric, value in (
                    (UTILISATION, utilisation),
                    (MEMORY_USED, 8 * 80 * 1024 * utilisation / 100),
                    (COST, 20.0),
                ):
                    rows.append(
                        TelemetryRollup(
                            tenant=tenant,
                            resource_kind=COMPUTE,
                            resource_id=node.pk,
                            metric=metric,
                            bucket=bucket,
                            min_value=value,
                            max_value=value,
                            avg_value=value,
                            sample_count=12,
                            computed_at=now,
                        )
                    )
        TelemetryRollup.objects.bulk_create(rows, batch_size=5000)
    return tenant, now, len(rows)


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database (its role needs CREATEDB).")
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'groundwork'}_optim_bench"
    admin_url = with_database(url, "postgres")
    var_dir = tempfile.mkdtemp(prefix="optim-bench-")
    os.environ["GROUNDWORK_VAR_DIR"] = var_dir
    recreate_database(admin_url, name)
    try:
        setup_django(with_database(url, name))
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from operations.optimisation.services import optimisation_run_for_tenant
        from operations.telemetry.models import TelemetryRollup
        from tenants.scoping import tenant_scope

        tenant, now, count = build_estate(args.nodes, args.days)
        start = now - dt.timedelta(days=args.days + 1)
        baseline, scans = [], []
        for _ in range(args.rounds):
            with tenant_scope(tenant.id):
                began = time.perf_counter()
                rows = list(
                    TelemetryRollup.objects.filter(tenant=tenant, bucket__gte=start).values_list(
                        "resource_kind", "resource_id", "metric", "bucket", "avg_value"
                    )
                )
                baseline.append(time.perf_counter() - began)
                assert len(rows) == count
                began = time.perf_counter()
                with CaptureQueriesContext(connection) as captured:
                    summary = optimisation_run_for_tenant(tenant=tenant, as_of=now)
                scans.append(time.perf_counter() - began)
        a, b = statistics.median(baseline), statistics.median(scans)
        reads = sum(
            1
            for q in captured.captured_queries
            if q["sql"].startswith("SELECT") and not q["sql"].startswith(BOOKKEEPING)
        )
        if args.queries:
            for q in captured.captured_queries:
                print(f"{q['time']:>7} {q['sql'][:90]}")
        print(f"{args.nodes} nodes, {count} rollup rows; last scan: {summary['found_by_kind']}")
        print(f"optimisation scan: a={a:.3f} b={b:.3f} ratio={b / a:.2f} queries={reads}")
    finally:
        connection.close()
        recreate_database(admin_url, name, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
