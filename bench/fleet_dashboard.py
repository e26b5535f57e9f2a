"""Benchmark the fleet dashboard (the staff home, /portal/) at 1,000 tenants.

``--tenants`` active tenants (default 1,000), each with a believable mix: open incidents of
every severity (some with an SLA clock about to run out or breached, a few serious ones near or
past the regulator's deadline), two compliance scans with a score per framework, two readiness
scores, open recommendations, job runs (some failed in the last day), two GPU nodes billed to a
cloud account with a budget, and hourly rollups of GPU utilisation (24 h) and cost (the month so
far), all with bulk inserts into the bench's own database. In one process, with Django's test
client signed in as an ``msp_admin`` (the second factor passed as the tests do):

(a) plain: a Django view defined here, mounted beside the project's URLs, that reads the same
    figures with one plain grouped query per table inside the same scope and answers JSON;
(b) dashboard: the real page (registry, cells, sort by attention, totals, template), its
    first page of rows; the columns read over telemetry (GPU use, spend) are cached for five
    minutes, so the render right after they expire is timed on its own ("cold").

Each runs ``--requests`` times a round after a warm-up, ``--rounds`` rounds; the median round
counts. The goal is ≤ 300 ms server time for the page at 1,000 tenants.

    .venv/bin/python bench/fleet_dashboard.py                  # SQLite, a temporary file
    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python \
        bench/fleet_dashboard.py

On PostgreSQL it works in a throwaway database (``<name>_fleet_bench``, created, migrated and
dropped). The plain view caches nothing, the page its telemetry columns: the ratio is what a
staff member waits for against reading the figures afresh. The last line is
``fleet_dashboard: a=<plain ms> b=<page ms> ratio=<a/b> queries=<page queries> tenants=<n>
cold=<ms>``, cold being the median render right after the cached columns are dropped (what a
staff member gets once every five minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import throwaway_database  # noqa: E402

BENCH_URLCONF = "bench_fleet_urls"
BATCH = 5000
CHUNK = 100  # tenants per transaction


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=5, help="requests of each kind a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="PostgreSQL: measure before the tables have statistics (autovacuum has not run)",
    )
    return parser.parse_args()


def seed_fleet(count: int, seed: int) -> list[int]:
    """Make the fleet with bulk inserts; returns the tenant ids."""
    from django.db import transaction
    from django.utils import timezone

    from operations.telemetry.services import telemetry_monthly_costs_refresh
    from tenants.models import ServicePlan, Tenant, TenantStatus
    from tenants.scoping import tenant_scope

    rng = random.Random(seed)
    now = timezone.now()
    started = time.perf_counter()
    tenants = Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"Fleet client {number:04d}",
                slug=f"fleet-{number:04d}",
                status=rng.choice([TenantStatus.ACTIVE] * 8 + [TenantStatus.ONBOARDING]),
                industry=rng.choice(["Finance", "Health", "Logistics", "Retail", "Public sector"]),
                region="eu-west",
                status_changed_at=now,
            )
            for number in range(1, count + 1)
        ],
        batch_size=BATCH,
    )
    ServicePlan.objects.bulk_create(
        [ServicePlan(tenant=t, business_days=[0, 1, 2, 3, 4]) for t in tenants], batch_size=BATCH
    )
    ids = [tenant.id for tenant in tenants]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic(), tenant_scope(*chunk):
            _figures(chunk, rng=rng, now=now)
    seeded = time.perf_counter()
    print(f"seeded {count} tenants in {seeded - started:.1f} s", flush=True)
    # What the rollup job does after recomputing hours: each resource's month-to-date cost.
    hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [hour - dt.timedelta(hours=back) for back in range(1, _month_hours(hour) + 1)]
    for start in range(0, len(tenants), CHUNK):
        chunk = tenants[start : start + CHUNK]
        with transaction.atomic(), tenant_scope(*(tenant.id for tenant in chunk)):
            for tenant in chunk:
                telemetry_monthly_costs_refresh(tenant=tenant, hours=hours, now=now)
    print(f"monthly costs of {count} tenants in {time.perf_counter() - seeded:.1f} s", flush=True)
    return ids


def _month_hours(hour: dt.datetime) -> int:
    """Whole hours of this month before ``hour`` (at least a day: the GPU column reads 24 h)."""
    return max(int((hour - hour.replace(day=1, hour=0)).total_seconds() // 3600), 24)


def _figures(tenant_ids: list[int], *, rng: random.Random, now: dt.datetime) -> None:
    from operations.compliance.models import ComplianceScan, Framework, Score
    from operations.incidents.models import Incident
    from operations.inventory.models import CloudAccount, ComputeKind, ComputeResource
    from operations.jobs.models import JobRun, JobStatus, JobTrigger
    from operations.optimisation.models import Recommendation
    from operations.readiness.models import ReadinessFramework, ReadinessScore
    from operations.telemetry.metrics import METRICS_BY_NAME, ResourceKind
    from operations.telemetry.models import TelemetryRollup

    minutes = dt.timedelta(minutes=1)
    incidents = []
    for tenant_id in tenant_ids:
        for number in range(1, rng.randint(1, 4) + 1):
            created = now - rng.randint(5, 600) * minutes
            status = rng.choice(["triggered", "acknowledged", "investigating", "resolved"])
            serious = rng.random() < 0.03
            incidents.append(
                Incident(
                    tenant_id=tenant_id,
                    number=number,
                    reference=f"T{tenant_id}-{number}",
                    title="Inference latency above target",
                    severity=rng.choice(["SEV1", "SEV2", "SEV3", "SEV3", "SEV4", "SEV4"]),
                    category="performance",
                    status=status,
                    created_at=created,
                    acknowledged_at=None if status == "triggered" else created + minutes,
                    resolved_at=now if status == "resolved" else None,
                    ack_due_at=created + rng.randint(15, 720) * minutes,
                    resolve_due_at=created + rng.randint(60, 2880) * minutes,
                    ack_breached_at=now if rng.random() < 0.05 else None,
                    serious=serious,
                    regulator_deadline=now + rng.randint(-24, 200) * 60 * minutes
                    if serious
                    else None,
                )
            )
    Incident.objects.bulk_create(incidents, batch_size=BATCH)

    frameworks = list(Framework.objects.order_by("code", "-loaded_at").distinct())
    scans, scores = [], []
    for tenant_id in tenant_ids:
        for days_ago in (1, 0):
            at = now - dt.timedelta(days=days_ago)
            scans.append(ComplianceScan(tenant_id=tenant_id, started_at=at, finished_at=at))
    ComplianceScan.objects.bulk_create(scans, batch_size=BATCH)
    for scan in scans:
        for framework in frameworks:
            scores.append(
                Score(
                    tenant_id=scan.tenant_id,
                    scan=scan,
                    framework=framework,
                    computed_at=scan.started_at,
                    score=rng.randint(30, 100),
                )
            )
    Score.objects.bulk_create(scores, batch_size=BATCH)

    readiness, _ = ReadinessFramework.objects.get_or_create(
        code="bench-readiness", version="1", defaults={"title": "Bench", "definition": {}}
    )
    ReadinessScore.objects.bulk_create(
        [
            ReadinessScore(
                tenant_id=tenant_id,
                framework=readiness,
                computed_at=now - dt.timedelta(days=days_ago),
                overall=rng.randint(20, 90),
                level=rng.randint(1, 5),
            )
            for tenant_id in tenant_ids
            for days_ago in (30, 0)
        ],
        batch_size=BATCH,
    )
    Recommendation.objects.bulk_create(
        [
            Recommendation(
                tenant_id=tenant_id,
                kind="idle_gpu",
                subject_type="compute",
                subject_id=index,
                subject_key=f"compute:{index}",
                subject_label=f"gpu-{index}",
                title="Idle GPUs",
                estimated_monthly_saving=rng.randint(0, 9000),
            )
            for tenant_id in tenant_ids
            for index in range(rng.randint(0, 3))
        ],
        batch_size=BATCH,
    )
    JobRun.objects.bulk_create(
        [
            JobRun(
                tenant_id=tenant_id,
                kind="compliance_scan",
                status=JobStatus.FAILED if rng.random() < 0.1 else JobStatus.SUCCEEDED,
                trigger=JobTrigger.SCHEDULE,
                created_at=now - dt.timedelta(hours=hours_ago),
                finished_at=now - dt.timedelta(hours=hours_ago),
            )
            for tenant_id in tenant_ids
            for hours_ago in range(0, 120, 24)
        ],
        batch_size=BATCH,
    )
    accounts = CloudAccount.objects.bulk_create(
        [
            CloudAccount(
                tenant_id=tenant_id,
                provider="aws",
                account_id=f"{tenant_id:012d}",
                monthly_budget=rng.choice([20000, 40000, 60000]),
            )
            for tenant_id in tenant_ids
        ],
        batch_size=BATCH,
    )
    compute = ComputeResource.objects.bulk_create(
        [
            ComputeResource(
                tenant_id=account.tenant_id,
                hostname=f"t{account.tenant_id}-gpu-{index}",
                kind=ComputeKind.GPU_NODE,
                gpu_model="NVIDIA H100 80GB HBM3",
                gpu_count=8,
                gpu_memory_gb=80,
                hourly_cost=32,
                cloud_account=account,
            )
            for account in accounts
            for index in range(2)
        ],
        batch_size=BATCH,
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    utilisation = METRICS_BY_NAME["gpu_utilization"].code
    cost = METRICS_BY_NAME["cost_per_hour"].code
    rollups = []
    for node in compute:
        level = rng.uniform(5, 95)
        for back in range(1, _month_hours(hour) + 1):
            bucket = hour - dt.timedelta(hours=back)
            series = [(cost, rng.uniform(20, 60))]
            if back <= 24:
                series.append((utilisation, level))
            for metric, value in series:
                rollups.append(
                    TelemetryRollup(
                        tenant_id=node.tenant_id,
                        resource_kind=ResourceKind.COMPUTE,
                        resource_id=node.id,
                        metric=metric,
                        bucket=bucket,
                        min_value=value,
                        max_value=value,
                        avg_value=value,
                        sample_count=60,
                        computed_at=now,
                    )
                )
    TelemetryRollup.objects.bulk_create(rollups, batch_size=BATCH)


def install_plain_view() -> str:
    """The baseline: the same figures by one plain grouped query per table, as JSON."""
    from django.conf import settings
    from django.db.models import Avg, Count, F, Min, Q, Sum, Window
    from django.db.models.functions import RowNumber
    from django.http import JsonResponse
    from django.urls import include, path
    from django.utils import timezone

    from operations.compliance.models import Score
    from operations.incidents.models import OPEN_STATUSES, Incident
    from operations.inventory.models import CloudAccount, ComputeResource
    from operations.jobs.models import JobRun
    from operations.optimisation.models import Recommendation
    from operations.readiness.models import ReadinessScore
    from operations.telemetry.metrics import METRICS_BY_NAME
    from operations.telemetry.models import TelemetryRollup
    from tenants.scoping import tenant_scope
    from tenants.selectors import tenants_visible_to

    def figures(request):
        now = timezone.now()
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        ids = list(tenants_visible_to(request.user).order_by("name").values_list("id", flat=True))
        out = {}
        with tenant_scope(*ids):
            open_ = Incident.objects.filter(tenant_id__in=ids, status__in=OPEN_STATUSES)
            out["incidents"] = list(
                open_.order_by()
                .values("tenant_id", "severity")
                .annotate(
                    n=Count("id"), breached=Count("id", filter=Q(ack_breached_at__isnull=False))
                )
            )
            out["regulator"] = list(
                Incident.objects.filter(
                    tenant_id__in=ids, serious=True, regulator_notified_at__isnull=True
                )
                .order_by()
                .values("tenant_id")
                .annotate(first=Min("regulator_deadline"))
            )
            out["compliance"] = list(
                Score.objects.filter(tenant_id__in=ids)
                .annotate(
                    rank=Window(
                        RowNumber(),
                        partition_by=[F("tenant_id"), F("framework_id")],
                        order_by=F("computed_at").desc(),
                    )
                )
                .filter(rank__lte=2)
                .values_list("tenant_id", "framework_id", "score", "rank")
            )
            out["readiness"] = list(
                ReadinessScore.objects.filter(tenant_id__in=ids)
                .annotate(
                    rank=Window(
                        RowNumber(), partition_by=[F("tenant_id")], order_by=F("computed_at").desc()
                    )
                )
                .filter(rank=1)
                .values_list("tenant_id", "level")
            )
            rollups = TelemetryRollup.objects.filter(tenant_id__in=ids).order_by()
            out["gpu"] = list(
                rollups.filter(
                    metric=METRICS_BY_NAME["gpu_utilization"].code,
                    bucket__gte=now - dt.timedelta(hours=24),
                )
                .values("tenant_id")
                .annotate(mean=Avg("avg_value"))
            )
            billed = ComputeResource.objects.filter(
                tenant_id__in=ids, cloud_account__isnull=False
            ).values("id")
            out["spend"] = list(
                rollups.filter(
                    metric=METRICS_BY_NAME["cost_per_hour"].code,
                    bucket__gte=month,
                    resource_id__in=billed,
                )
                .values("tenant_id")
                .annotate(total=Sum("avg_value"))
            )
            out["budgets"] = list(
                CloudAccount.objects.filter(tenant_id__in=ids)
                .order_by()
                .values("tenant_id")
                .annotate(budget=Sum("monthly_budget"))
            )
            out["savings"] = list(
                Recommendation.objects.filter(tenant_id__in=ids, status="open")
                .order_by()
                .values("tenant_id")
                .annotate(saving=Sum("estimated_monthly_saving"))
            )
            out["jobs"] = list(
                JobRun.objects.filter(
                    tenant_id__in=ids,
                    status="failed",
                    finished_at__gte=now - dt.timedelta(hours=24),
                )
                .order_by()
                .values("tenant_id")
                .annotate(n=Count("id"))
            )
        return JsonResponse({"tenants": len(ids), **{k: len(v) for k, v in out.items()}})

    module = types.ModuleType(BENCH_URLCONF)
    module.urlpatterns = [
        path("bench/fleet/", figures),
        path("", include(settings.ROOT_URLCONF)),
    ]
    sys.modules[BENCH_URLCONF] = module
    settings.ROOT_URLCONF = BENCH_URLCONF
    return "/bench/fleet/"


_cpu_ms: list[float] = []  # this process's CPU ms a request of each timed() call, in order


def timed(client, url: str, count: int) -> tuple[float, int]:
    """Wall ms per request of ``count`` GETs of ``url``, and the last one's queries. The
    process's CPU ms a request goes to ``_cpu_ms``: on a loaded machine it moves far less than
    wall time (on SQLite it is all the work; on PostgreSQL the server's share is left out)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(count - 1):
        response = client.get(url, secure=True)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, secure=True)
    elapsed = time.perf_counter() - started
    _cpu_ms.append((time.process_time() - cpu_started) * 1000 / count)
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code} {response.content[:500]!r}")
    return elapsed * 1000 / count, len(captured.captured_queries)


def sign_in_msp_admin(client):
    from django.http import HttpRequest
    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tenants.models import MspRole, User

    user = User.objects.create(
        username="fleet-bench", msp_role=MspRole.ADMIN, is_staff=True, is_superuser=True
    )
    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client.force_login(user)
    request = HttpRequest()
    request.session = client.session
    request.user = user
    otp_login(request, device)
    request.session.save()


def _print_columns() -> None:
    """Each registered column's figures for the whole fleet, timed on its own."""
    from tenants.fleet import fleet_columns
    from tenants.models import Tenant
    from tenants.scoping import tenant_scope

    ids = list(Tenant.objects.values_list("id", flat=True))
    with tenant_scope(*ids):
        for column in fleet_columns():
            started = time.perf_counter()
            column.figures(ids)
            print(f"  column {column.key}: {(time.perf_counter() - started) * 1000:.1f} ms")


def _ms(values: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in values)


def run(args) -> None:
    from django.db import connection
    from django.test import Client

    seed_fleet(args.tenants, args.seed)
    if connection.vendor == "postgresql" and not args.no_analyze:
        # What autovacuum does within a minute of a bulk load; without statistics the planner
        # guesses one row per table (see --no-analyze).
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"analyzed in {time.perf_counter() - started:.1f} s", flush=True)
    plain = install_plain_view()
    client = Client()
    sign_in_msp_admin(client)
    from django.core.cache import cache

    cache.clear()
    started = time.perf_counter()
    page = client.get("/portal/", secure=True)
    first = (time.perf_counter() - started) * 1000
    # The first page of rows and the fleet total (of every tenant).
    text = page.content.decode()
    rows = text.count('<th scope="row">') - 1
    assert rows == min(args.tenants, 100), rows
    assert f"({args.tenants} tenants)" in text
    assert client.get(plain, secure=True).json()["tenants"] == args.tenants
    print(f"{connection.vendor}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(
        f"{args.tenants} tenants; {args.requests} requests × {args.rounds} rounds, median round; "
        f"page {len(page.content) / 1024:.0f} KiB"
    )
    print(f"first request of the process (templates, imports, cold cache): {first:.1f} ms")
    timed(client, plain, 2)  # warm-up
    timed(client, "/portal/", 2)
    _print_columns()
    a_runs, b_runs, cold_runs = [], [], []
    b_cpu, cold_cpu = [], []
    for _ in range(args.rounds):
        a_ms, a_queries = timed(client, plain, args.requests)
        b_ms, b_queries = timed(client, "/portal/", args.requests)
        b_cpu.append(_cpu_ms[-1])
        # The first render after the cached columns expire (every five minutes).
        _forget_cached_columns()
        cold_ms, cold_queries = timed(client, "/portal/", 1)
        cold_cpu.append(_cpu_ms[-1])
        a_runs.append(a_ms)
        b_runs.append(b_ms)
        cold_runs.append(cold_ms)
    a, b, cold = statistics.median(a_runs), statistics.median(b_runs), statistics.median(cold_runs)
    print(
        f"this process's CPU a request: dashboard {statistics.median(b_cpu):.1f} ms, "
        f"cached columns expired {statistics.median(cold_cpu):.1f} ms; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(f"plain figures: {a:.1f} ms, {a_queries} queries (rounds: {_ms(a_runs)})")
    print(f"dashboard: {b:.1f} ms, {b_queries} queries (rounds: {_ms(b_runs)})")
    print(
        f"dashboard, cached columns expired: {cold:.1f} ms, {cold_queries} queries "
        f"(rounds: {_ms(cold_runs)})"
    )
    print(
        f"fleet_dashboard: a={a:.1f} b={b:.1f} ratio={a / b:.3f} queries={b_queries} "
        f"tenants={args.tenants} cold={cold:.0f}"
    )


def _forget_cached_columns() -> None:
    """Drop the whole fleet's cached column figures (what expiry does)."""
    from django.core.cache import cache

    from tenants.fleet import fleet_cache_key, fleet_columns
    from tenants.models import Tenant

    ids = list(Tenant.objects.values_list("id", flat=True))
    cache.delete_many([fleet_cache_key(column, ids) for column in fleet_columns()])


def main() -> None:
    args = parse_args()
    with throwaway_database("fleet_bench"):
        run(args)


if __name__ == "__main__":
    main()
