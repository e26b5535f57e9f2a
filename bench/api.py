"""Benchmark the common API reads against a plain Django view returning the same rows.

One tenant with ``--nodes`` GPU nodes (default 120, in clusters of 8, spread over 4 sites) and
48 hourly rollups of one metric for the first node. In one process, with Django's test client
(the full middleware stack, a bearer token with the ``read`` scope, the throttle):

(a) plain: a Django view defined here, mounted beside the project's URLs, that runs the same
    query (the API's selector) inside the tenant's scope and answers ``.values()`` rows through
    ``JsonResponse``;
(b) api: the real endpoint.

Pairs: the compute list (``…/compute/?page_size=100``, 18 fields a row), one compute node
(detail) and the telemetry series (48 hourly points). Each request runs ``--requests`` times a
round after a warm-up, ``--rounds`` rounds; the median round counts. Per request: ms, queries
(the API's include the tenant scope's ``set_config`` on PostgreSQL), this process's CPU ms, and
``ratio=plain/api`` of wall time (higher is better; the goal for the 100-row list is 0.5).

    .venv/bin/python bench/api.py                      # SQLite, a temporary file
    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python bench/api.py

On PostgreSQL it works in a throwaway database (``<name>_api_bench``, created, migrated and
dropped); always in a temporary ``GROUNDWORK_VAR_DIR``. ``--profile`` prints a cProfile of the
list requests (``--profile-kind detail|series`` for the others; ``--profile-sort tottime`` for
own time). The last line is
``api-list: a=<plain ms> b=<api ms> ratio=<a/b> queries=<api queries>``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import statistics
import sys
import time
import types
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import throwaway_database  # noqa: E402

BENCH_URLCONF = "bench_api_urls"
# The same columns the API's ComputeSerializer answers, by the same joins.
COMPUTE_VALUES = (
    "id",
    "hostname",
    "kind",
    "status",
    "site",
    "site__code",
    "cluster",
    "cluster__hostname",
    "node_count",
    "cloud_account",
    "cloud_account__account_id",
    "gpu_model",
    "gpu_count",
    "gpu_memory_gb",
    "hourly_cost",
    "gpu_uuids",
    "created_at",
    "updated_at",
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=120)
    parser.add_argument("--requests", type=int, default=20, help="requests of each kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the list requests")
    parser.add_argument("--profile-sort", default="cumulative", help="e.g. tottime")
    parser.add_argument("--profile-lines", type=int, default=45)
    parser.add_argument("--profile-kind", default="list", choices=["list", "detail", "series"])
    return parser.parse_args()


def build_estate(nodes: int):
    from django.utils import timezone

    from operations.inventory.models import ComputeKind, SiteKind
    from operations.inventory.services import compute_create, site_create
    from operations.telemetry.metrics import METRICS_BY_NAME
    from operations.telemetry.models import TelemetryRollup
    from tenants import services
    from tenants.models import Membership, TenantRole, User
    from tenants.scoping import tenant_scope

    tenant = services.tenant_create(name="API bench", slug="api-bench")
    user = User.objects.create(username="api-bench")
    Membership.objects.create(user=user, tenant=tenant, role=TenantRole.ADMIN)
    _token, plaintext = services.token_issue(
        user=user, name="bench", tenant=tenant, scopes=["read"]
    )
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    with tenant_scope(tenant.id):
        sites = [
            site_create(
                tenant=tenant,
                code=f"site-{i}",
                name=f"Site {i}",
                kind=SiteKind.ON_PREM,
                country="GB",
            )
            for i in range(4)
        ]
        clusters = [
            compute_create(
                tenant=tenant,
                hostname=f"cluster-{i:02d}",
                kind=ComputeKind.GPU_CLUSTER,
                site=sites[i % 4],
            )
            for i in range((nodes + 7) // 8)
        ]
        first = None
        for n in range(nodes):
            node = compute_create(
                tenant=tenant,
                hostname=f"node-{n:03d}",
                kind=ComputeKind.GPU_NODE,
                cluster=clusters[n // 8],
                site=sites[(n // 8) % 4],
                gpu_model="NVIDIA H100 80GB",
                gpu_count=8,
                gpu_memory_gb=80,
                hourly_cost="20.0000",
                gpu_uuids=[f"GPU-{uuid.UUID(int=n * 8 + g)}" for g in range(8)],
            )
            first = first or node
        metric = METRICS_BY_NAME["gpu_utilization"]
        TelemetryRollup.objects.bulk_create(
            TelemetryRollup(
                tenant=tenant,
                resource_kind=1,
                resource_id=first.pk,
                metric=metric.code,
                bucket=now - dt.timedelta(hours=hour + 1),
                min_value=10.0,
                max_value=90.0,
                avg_value=50.0 + hour % 7,
                sample_count=360,
                computed_at=now,
            )
            for hour in range(48)
        )
    return tenant, plaintext, first, now


def install_plain_views(tenant, node, now) -> dict[str, str]:
    """The baseline views, mounted at /bench/… beside the project's URLs; their paths."""
    from django.conf import settings
    from django.http import JsonResponse
    from django.urls import include, path

    from operations.inventory.models import ComputeResource
    from operations.inventory.selectors import compute_with_references
    from operations.telemetry.metrics import METRICS_BY_NAME
    from operations.telemetry.models import TelemetryRollup
    from tenants.scoping import tenant_scope

    def compute_rows():
        # The API's own selector: both sides send the same SQL, so the ratio is what the API
        # adds in Python, not a difference of queries.
        return (
            compute_with_references(ComputeResource.objects.filter(tenant_id=tenant.id))
            .order_by("hostname")
            .values(*COMPUTE_VALUES)
        )

    def compute_list(request):
        with tenant_scope(tenant.id):
            rows = list(compute_rows()[:100])
        return JsonResponse({"results": rows})

    def compute_detail(request, pk):
        with tenant_scope(tenant.id):
            row = compute_rows().get(pk=pk)
        return JsonResponse(row)

    def series(request):
        metric = METRICS_BY_NAME["gpu_utilization"]
        with tenant_scope(tenant.id):
            points = list(
                TelemetryRollup.objects.filter(
                    tenant_id=tenant.id,
                    resource_kind=1,
                    resource_id=node.pk,
                    metric=metric.code,
                    bucket__gte=now - dt.timedelta(days=2),
                    bucket__lt=now,
                )
                .order_by("bucket")
                .values("bucket", "min_value", "max_value", "avg_value", "sample_count")
            )
        return JsonResponse({"points": points})

    module = types.ModuleType(BENCH_URLCONF)
    module.urlpatterns = [
        path("bench/compute/", compute_list),
        path("bench/compute/<int:pk>/", compute_detail),
        path("bench/series/", series),
        path("", include(settings.ROOT_URLCONF)),
    ]
    sys.modules[BENCH_URLCONF] = module
    settings.ROOT_URLCONF = BENCH_URLCONF
    return {
        "list": "/bench/compute/",
        "detail": f"/bench/compute/{node.pk}/",
        "series": "/bench/series/",
    }


def timed(client, url: str, count: int) -> tuple[float, float, int]:
    """Wall and CPU ms per request of ``count`` GETs of ``url``, and the last one's queries.

    CPU time is this process's alone: on SQLite all of a request, on PostgreSQL all but the
    server's side. The machine is often shared, and CPU time is what other processes disturb
    least.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count - 1):
        response = client.get(url, secure=True)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, secure=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.content[:500]!r}")
    return elapsed * 1000 / count, cpu * 1000 / count, len(captured.captured_queries)


def main() -> None:
    args = parse_args()
    # The bench sends far more than a client may a minute; the throttle still runs in full.
    os.environ["API_THROTTLE_RATE"] = "1000000/minute"
    with throwaway_database("api_bench"):
        run(args)


def run(args) -> None:
    from django.db import connection
    from django.test import Client

    tenant, token, node, now = build_estate(args.nodes)
    plain = install_plain_views(tenant, node, now)
    base = f"/api/v1/tenants/{tenant.slug}"
    start = (now - dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")
    end = now.isoformat().replace("+00:00", "Z")
    api = {
        "list": f"{base}/compute/?page_size=100",
        "detail": f"{base}/compute/{node.pk}/",
        "series": (
            f"{base}/telemetry/series?resource=compute:{node.hostname}"
            f"&metric=gpu_utilization&from={start}&to={end}&step=1h"
        ),
    }
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    listed = client.get(api["list"], secure=True).json()
    assert len(listed["results"]) == 100, listed
    assert len(client.get(plain["list"], secure=True).json()["results"]) == 100
    assert len(listed["results"][0]) == len(COMPUTE_VALUES), sorted(listed["results"][0])
    points = client.get(api["series"], secure=True).json()["points"]
    assert len(points) == 48, points[:2]
    print(f"{connection.vendor}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"{args.nodes} nodes; {args.requests} requests × {args.rounds} rounds, median round")
    results = {}
    for kind in ("list", "detail", "series"):
        timed(client, plain[kind], 3)  # warm-up
        timed(client, api[kind], 3)
        a_runs, b_runs, a_cpu, b_cpu = [], [], [], []
        for _ in range(args.rounds):
            a_ms, a_cpu_ms, a_queries = timed(client, plain[kind], args.requests)
            b_ms, b_cpu_ms, b_queries = timed(client, api[kind], args.requests)
            a_runs.append(a_ms)
            b_runs.append(b_ms)
            a_cpu.append(a_cpu_ms)
            b_cpu.append(b_cpu_ms)
        a, b = statistics.median(a_runs), statistics.median(b_runs)
        a_c, b_c = statistics.median(a_cpu), statistics.median(b_cpu)
        results[kind] = (a, b, b_queries)
        print(
            f"api-{kind}: plain {a:.2f} ms (cpu {a_c:.2f}, {a_queries} queries), "
            f"api {b:.2f} ms (cpu {b_c:.2f}, {b_queries} queries), "
            f"cpu ratio {a_c / b_c:.3f}, ratio={a / b:.3f}"
        )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            client.get(api[args.profile_kind], secure=True)
        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats(args.profile_sort)
        stats.print_stats(args.profile_lines)
    a, b, queries = results["list"]
    print(f"api-list: a={a:.2f} b={b:.2f} ratio={a / b:.3f} queries={queries}")


if __name__ == "__main__":
    main()
