"""The capacity model: a fleet-shaped workload at reduced scale, extrapolated to a large MSP.

In one throwaway PostgreSQL database (``<name>_capacity``, created, migrated and dropped) it
builds ``--tenants`` active tenants (default 50), each with ``--gpus`` GPU nodes (20), AI
systems, datasets and deployments (``bench.compliance_fleet.generate_fleet``), then measures,
each in this one process (one core of work, PostgreSQL on the same machine):

1. ingest: every tenant's GPUs × 8 DCGM families every 15 s for ``--minutes`` (10), posted
   through the real endpoint ``POST /api/v1/tenants/{slug}/telemetry/samples`` (Django's test
   client, bearer token, the full middleware stack), one request per tenant and 5 minutes;
2. rollups: the hourly rollups of what (1) stored, tenant by tenant (``telemetry.rollup_tenant``,
   what the ``ingest`` queue's workers run every 5 minutes);
3. jobs: a compliance, a readiness and an optimisation scan of every tenant through the job
   engine (``job_submit`` with Celery eager, so the worker's code path runs in this process:
   the claim, the kind, the finish);
4. web: the fleet dashboard (``/portal/``, an MSP admin's session) and a tenant API list
   (``GET /api/v1/tenants/{slug}/compute/``, a bearer token), ``--requests`` each;
5. storage: a month of hourly samples for ``--month-tenants`` tenants (5), rolled up, then
   ``pg_total_relation_size`` of the telemetry tables (every partition) and of the job
   engine's tables, per tenant; the raw block bytes per sample come from (1).

It then extrapolates to ``--target-tenants`` (5,000) and ``--target-gpus`` (100,000): 8 series
a GPU every 15 s is 53,333 series values a second. Every figure is printed with the step it
came from. Per-core figures are this process's throughput; ``cpu`` is its own CPU time (the
rest of the wall time is PostgreSQL's share, on the same machine). The last line is
``capacity: … ratio=<series values/s one web process and its PostgreSQL stored / needed>``.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python bench/capacity.py

Run it without ``REDIS_URL``: the cache and broker are then files in a temporary directory.
VictoriaMetrics figures come from ``bench/ingest_peer.py`` (another change), not from here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import throwaway_database  # noqa: E402

FAMILIES = (
    ("gpu_utilization", 0, 100),
    ("gpu_memory_used_mib", 0, 80_000),
    ("gpu_memory_free_mib", 0, 80_000),
    ("gpu_power_watts", 50, 700),
    ("gpu_temperature_celsius", 20, 90),
    ("gpu_xid_errors", 0, 0),
    ("gpu_graphics_engine_active", 0, 100),
    ("gpu_tensor_active", 0, 100),
)
STEP_SECONDS = 15
SCAN_KINDS = ("compliance_scan", "readiness_scan", "optimisation_scan")
NIGHTLY_WINDOW_HOURS = 4  # nightly schedules are staggered over 01:00-05:00


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--gpus", type=int, default=20, help="GPU nodes per tenant")
    parser.add_argument("--minutes", type=int, default=10, help="telemetry ingested per tenant")
    parser.add_argument("--requests", type=int, default=50, help="web requests per page")
    parser.add_argument("--month-tenants", type=int, default=5)
    parser.add_argument("--target-tenants", type=int, default=5_000)
    parser.add_argument("--target-gpus", type=int, default=100_000)
    parser.add_argument(
        "--web-rps", type=float, default=50.0, help="peak web requests/s assumed for the target"
    )
    return parser.parse_args()


def database_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to this database (read from
    /proc: the server runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend'"
        )
        pids = [row[0] for row in cursor.fetchall()]
    ticks = os.sysconf("SC_CLK_TCK")
    spent = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return spent


class Clock:
    """Wall seconds of a block, this process's CPU seconds, and PostgreSQL's (its backends)."""

    def __enter__(self):
        self._db = database_cpu()
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        after = database_cpu()
        self.db = sum(spent - self._db.get(pid, 0.0) for pid, spent in after.items())


# --- The fleet ---------------------------------------------------------------------------------


def build_fleet(tenants: int, gpus: int) -> list[dict]:
    """Active tenants with AI systems (the fleet scan's generator), ``gpus`` GPU nodes and an
    ingest token each."""
    from bench.compliance_fleet import generate_fleet
    from operations.inventory.models import ComputeResource
    from operations.telemetry import services as telemetry
    from tenants import services
    from tenants.models import Membership, Tenant, TenantRole, User
    from tenants.scoping import tenant_scope

    tenant_ids = generate_fleet(tenants=tenants, systems=20)
    fleet = []
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"):
        user = User.objects.create(username=f"{tenant.slug}-ingest")
        Membership.objects.create(user=user, tenant=tenant, role=TenantRole.ADMIN)
        _token, plaintext = services.token_issue(
            user=user, name="capacity", tenant=tenant, scopes=["read", "ingest"]
        )
        with tenant_scope(tenant.id):
            ComputeResource.objects.bulk_create(
                ComputeResource(
                    tenant=tenant,
                    hostname=f"{tenant.slug}-gpu-{number:02d}",
                    kind="gpu_node",
                    gpu_count=1,
                    gpu_memory_gb=80,
                )
                for number in range(gpus)
            )
        fleet.append({"tenant": tenant, "token": plaintext})
    telemetry.telemetry_partitions_ensure()
    return fleet


def ingest_bodies(tenant, gpus: int, minutes: int, end: dt.datetime, rng) -> list[bytes]:
    """One JSON body per 5 minutes of the tenant's GPUs × families, every 15 s."""
    ticks = minutes * 60 // STEP_SECONDS
    per_body = 5 * 60 // STEP_SECONDS
    bodies = []
    for first in range(0, ticks, per_body):
        samples = []
        for tick in range(first, min(first + per_body, ticks)):
            ts = (end - dt.timedelta(seconds=STEP_SECONDS * (ticks - tick))).isoformat()
            for number in range(gpus):
                resource = f"compute:{tenant.slug}-gpu-{number:02d}"
                for name, low, high in FAMILIES:
                    value = round(rng.uniform(low, high), 1)
                    samples.append({"resource": resource, "metric": name, "ts": ts, "value": value})
        bodies.append(json.dumps({"samples": samples}).encode())
    return bodies


# --- The measurements --------------------------------------------------------------------------


def measure_ingest(fleet, gpus: int, minutes: int) -> dict:
    from django.test import Client

    rng = random.Random(17)
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    requests = []
    for member in fleet:
        tenant, token = member["tenant"], member["token"]
        url = f"/api/v1/tenants/{tenant.slug}/telemetry/samples"
        for body in ingest_bodies(tenant, gpus, minutes, end, rng):
            requests.append((Client(HTTP_AUTHORIZATION=f"Bearer {token}"), url, body))
    # Round-robin over the tenants, as their agents would post.
    requests.sort(key=lambda request: request[1])
    samples = 0
    with Clock() as clock:
        for client, url, body in requests:
            response = client.post(url, data=body, content_type="application/json", secure=True)
            if response.status_code != 200:
                raise SystemExit(f"ingest: {response.status_code} {response.content[:300]!r}")
            samples += response.json()["inserted"]
    return {
        "samples": samples,
        "requests": len(requests),
        "wall": clock.wall,
        "cpu": clock.cpu,
        "db": clock.db,
    }


def measure_rollups(fleet) -> dict:
    from operations.telemetry.models import TelemetryRollup
    from operations.telemetry.tasks import rollup_tenant
    from tenants.scoping import all_tenants_scope

    with Clock() as clock:
        hours = 0
        for member in fleet:
            hours += rollup_tenant(tenant_id=member["tenant"].id)["hours"]
    with all_tenants_scope():
        rows = TelemetryRollup.objects.count()
    return {
        "tenant_hours": hours,
        "rollups": rows,
        "wall": clock.wall,
        "cpu": clock.cpu,
        "db": clock.db,
    }


def measure_scans(fleet) -> dict:
    from celery import current_app

    from operations.jobs.models import JobRun, JobStatus
    from operations.jobs.services import job_submit
    from tenants.scoping import all_tenants_scope

    current_app.conf.task_always_eager = True
    figures = {}
    try:
        for kind in SCAN_KINDS:
            with Clock() as clock:
                for member in fleet:
                    job_submit(tenant=member["tenant"], kind=kind)
            with all_tenants_scope():
                statuses = set(JobRun.objects.filter(kind=kind).values_list("status", flat=True))
            if statuses != {JobStatus.SUCCEEDED}:
                raise SystemExit(f"{kind}: runs ended {statuses}")
            figures[kind] = {
                "scans": len(fleet),
                "wall": clock.wall,
                "cpu": clock.cpu,
                "db": clock.db,
            }
    finally:
        current_app.conf.task_always_eager = False
    return figures


def measure_web(fleet, requests: int) -> dict:
    from django.test import Client

    from bench.fleet_dashboard import sign_in_msp_admin

    staff = Client()
    sign_in_msp_admin(staff)
    member = fleet[0]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {member['token']}")
    pages = {
        "fleet dashboard /portal/": (staff, "/portal/"),
        "API compute list": (api, f"/api/v1/tenants/{member['tenant'].slug}/compute/"),
    }
    figures = {}
    for label, (client, url) in pages.items():
        for _ in range(3):  # warm-up: templates, imports, cached columns
            client.get(url, secure=True)
        with Clock() as clock:
            for _ in range(requests):
                response = client.get(url, secure=True)
                if response.status_code != 200:
                    raise SystemExit(f"{url}: {response.status_code}")
        figures[label] = {
            "requests": requests,
            "wall": clock.wall,
            "cpu": clock.cpu,
            "db": clock.db,
        }
    return figures


def job_runs_count() -> int:
    from operations.jobs.models import JobRun
    from tenants.scoping import all_tenants_scope

    with all_tenants_scope():
        return JobRun.objects.count()


def relation_bytes(prefixes: tuple[str, ...]) -> int:
    """Bytes of every table (partitions, indexes, TOAST) whose name starts with a prefix."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND n.nspname = 'public' AND c.relname LIKE ANY(%s)",
            [[f"{prefix}%" for prefix in prefixes]],
        )
        return int(cursor.fetchone()[0])


def measure_month(fleet, gpus: int, tenants: int) -> dict:
    """A month of hourly samples for ``tenants`` tenants, rolled up: the rollup bytes a
    tenant-month leaves (rollups are kept 400 days; raw blocks 30)."""
    from operations.telemetry import services as telemetry
    from operations.telemetry.tasks import rollup_tenant
    from tenants.scoping import tenant_scope

    before = relation_bytes(("telemetry_rollup",))
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    # Partitions for the month's days (the hourly task makes only the next days').
    for days_ago in range(31):
        telemetry.telemetry_partitions_ensure(now=now - dt.timedelta(days=days_ago), ahead=0)
    rng = random.Random(5)
    rolled = 0
    hours = [now - dt.timedelta(hours=back, minutes=30) for back in range(1, 30 * 24 - 1)]
    for member in fleet[:tenants]:
        tenant = member["tenant"]
        for first in range(0, len(hours), 24):
            samples = [
                {
                    "resource": f"compute:{tenant.slug}-gpu-{number:02d}",
                    "metric": name,
                    "ts": moment.isoformat(),
                    "value": round(rng.uniform(low, high), 1),
                }
                for moment in hours[first : first + 24]
                for number in range(gpus)
                for name, low, high in FAMILIES
            ]
            with tenant_scope(tenant.id):
                telemetry.telemetry_ingest_batch(tenant=tenant, samples=samples)
        rolled += rollup_tenant(tenant_id=tenant.id)["hours"]
    after = relation_bytes(("telemetry_rollup",))
    return {"tenants": tenants, "rollup_bytes": after - before, "tenant_hours": rolled}


def describe_machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({cpu}), PostgreSQL {version}, Python {sys.version.split()[0]}"


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


# --- The model ---------------------------------------------------------------------------------


def run(args) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("bench/capacity.py needs PostgreSQL: set DATABASE_URL=postgres://…")
    # One connection (one backend) for the run, so that its CPU time can be read.
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = None
    print(f"machine: {describe_machine()}; {load()}", flush=True)
    with Clock() as clock:
        fleet = build_fleet(args.tenants, args.gpus)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"fleet: {args.tenants} tenants × {args.gpus} GPUs built in {clock.wall:.0f} s")

    ingest = measure_ingest(fleet, args.gpus, args.minutes)
    raw_bytes = relation_bytes(("telemetry_sample_block",))
    ingest_rate = ingest["samples"] / ingest["wall"]
    ingest_cpu_rate = ingest["samples"] / ingest["cpu"]
    print(
        f"[1 ingest] {ingest['samples']:,} series values in {ingest['requests']} requests: "
        f"{ingest_rate:,.0f}/s wall, {ingest_cpu_rate:,.0f}/s per web-process CPU second; "
        f"PostgreSQL CPU {ingest['db'] * 1e6 / ingest['samples']:.1f} µs a value; "
        f"{raw_bytes / ingest['samples']:.1f} bytes a value stored; {load()}",
        flush=True,
    )
    rollups = measure_rollups(fleet)
    series = args.tenants * args.gpus * len(FAMILIES)
    series_hours = series * rollups["tenant_hours"] / args.tenants
    rollup_rate = series_hours / rollups["wall"]
    print(
        f"[2 rollups] {rollups['tenant_hours']} tenant-hours ({series_hours:,.0f} series-hours, "
        f"{rollups['rollups']:,} rollup rows) in {rollups['wall']:.1f} s: "
        f"{rollup_rate:,.0f} series-hours/s per worker process "
        f"({series_hours / rollups['cpu']:,.0f}/s of its CPU; PostgreSQL CPU "
        f"{rollups['db'] * 1e3 / series_hours:.2f} ms a series-hour); {load()}",
        flush=True,
    )
    scans = measure_scans(fleet)
    for kind, figure in scans.items():
        print(
            f"[3 jobs] {kind}: {figure['scans']} tenants in {figure['wall']:.1f} s: "
            f"{figure['scans'] / figure['wall']:.1f} scans/s per worker process "
            f"({figure['scans'] / figure['cpu']:.1f}/s of its CPU; PostgreSQL CPU "
            f"{figure['db'] * 1e3 / figure['scans']:.0f} ms a scan)",
            flush=True,
        )
    jobs_bytes = relation_bytes(("jobs_jobrun", "jobs_joblog"))
    runs = job_runs_count()  # through the scope: row-level security hides them otherwise
    web = measure_web(fleet, args.requests)
    for label, figure in web.items():
        print(
            f"[4 web] {label}: {figure['wall'] * 1000 / figure['requests']:.1f} ms wall, "
            f"{figure['cpu'] * 1000 / figure['requests']:.1f} ms web-process CPU a request: "
            f"{figure['requests'] / figure['cpu']:.1f} requests/s per web core; PostgreSQL CPU "
            f"{figure['db'] * 1e3 / figure['requests']:.1f} ms a request; {load()}",
            flush=True,
        )
    month = measure_month(fleet, args.gpus, args.month_tenants)
    rollup_month = month["rollup_bytes"] / month["tenants"]
    print(
        f"[5 storage] a month of hourly rollups: {rollup_month / 2**20:.1f} MiB a tenant "
        f"({args.gpus} GPUs); job runs and logs {jobs_bytes / max(runs, 1) / 1024:.1f} KiB a run "
        f"({runs} runs)",
        flush=True,
    )
    extrapolate(args, ingest, raw_bytes, rollups, scans, web, rollup_month, jobs_bytes, runs)


def extrapolate(args, ingest, raw_bytes, rollups, scans, web, rollup_month, jobs_bytes, runs):
    """Cores from CPU seconds (this process's and PostgreSQL's), not wall time: on a shared
    machine the wall time also counts waiting for a core."""
    gpus_per_tenant = args.target_gpus / args.target_tenants
    values_needed = args.target_gpus * len(FAMILIES) / STEP_SECONDS
    # 1. Ingest: web processes and PostgreSQL.
    per_web_core = ingest["samples"] / ingest["cpu"]
    web_ingest_cores = values_needed / per_web_core
    db_ingest_cores = values_needed * ingest["db"] / ingest["samples"]
    # 2. Rollups: each 5-minute pass recomputes the open hour of every series (12 an hour).
    series_hours = args.tenants * args.gpus * len(FAMILIES) * rollups["tenant_hours"]
    series_hours /= args.tenants
    rollups_needed = args.target_gpus * len(FAMILIES) * 12 / 3600
    rollup_per_core = series_hours / rollups["cpu"]
    rollup_workers = rollups_needed / rollup_per_core
    db_rollup_cores = rollups_needed * rollups["db"] / series_hours
    # 3. Nightly scans: every tenant, each kind, within the window.
    window = NIGHTLY_WINDOW_HOURS * 3600
    scan_cpu = sum(f["cpu"] / f["scans"] for f in scans.values())  # a tenant's three scans
    scan_db = sum(f["db"] / f["scans"] for f in scans.values())
    job_workers = args.target_tenants * scan_cpu / window
    db_scan_cores = args.target_tenants * scan_db / window
    # 4. Web: the slowest page of step 4 at the assumed peak rate.
    slowest = max(web.values(), key=lambda f: f["cpu"] / f["requests"])
    web_cores = args.web_rps * slowest["cpu"] / slowest["requests"]
    db_web_cores = args.web_rps * max(f["db"] / f["requests"] for f in web.values())
    # 5. Storage.
    bytes_per_value = raw_bytes / ingest["samples"]
    raw_month = gpus_per_tenant * len(FAMILIES) * 30 * 86400 / STEP_SECONDS * bytes_per_value
    rollup_tenant_month = rollup_month * gpus_per_tenant / args.gpus
    job_month = jobs_bytes / max(runs, 1) * len(SCAN_KINDS) * 30
    per_tenant_month = raw_month + rollup_tenant_month + job_month
    fleet_raw = raw_month * args.target_tenants  # raw blocks are kept 30 days: one month
    fleet_rollups = rollup_tenant_month * args.target_tenants * 13  # kept 400 days
    db_cores = db_ingest_cores + db_rollup_cores + db_scan_cores + db_web_cores
    print(f"--- {args.target_tenants:,} tenants, {args.target_gpus:,} GPUs ---")
    print(f"ingest needed: {values_needed:,.0f} series values/s (8 families a GPU every 15 s)")
    print(
        f"  ingest: {web_ingest_cores:.1f} web cores ({per_web_core:,.0f} values/s a core) and "
        f"{db_ingest_cores:.1f} PostgreSQL cores (step 1)"
    )
    print(
        f"  rollups: {rollups_needed:,.0f} series-hours/s: {rollup_workers:.1f} ingest-queue "
        f"processes ({rollup_per_core:,.0f}/s a core), {db_rollup_cores:.1f} PostgreSQL cores "
        f"(step 2)"
    )
    print(
        f"  nightly scans: {args.target_tenants * len(SCAN_KINDS):,} in {NIGHTLY_WINDOW_HOURS} h: "
        f"{job_workers:.1f} jobs-queue processes ({scan_cpu * 1000:.0f} ms of worker CPU a "
        f"tenant's three scans), {db_scan_cores:.1f} PostgreSQL cores (step 3)"
    )
    print(
        f"  web at {args.web_rps:.0f} requests/s of the slowest page: {web_cores:.1f} cores, "
        f"{db_web_cores:.1f} PostgreSQL cores (step 4)"
    )
    print(f"  PostgreSQL cores in all: {db_cores:.1f} (ingest {db_ingest_cores / db_cores:.0%})")
    print(
        f"  PostgreSQL a tenant a month: {per_tenant_month / 2**30:.2f} GiB (raw blocks "
        f"{raw_month / 2**30:.2f} GiB, rollups {rollup_tenant_month / 2**20:.0f} MiB, job runs "
        f"{job_month / 2**20:.1f} MiB; step 5); fleet: raw {fleet_raw / 2**40:.1f} TiB "
        f"(30 days kept), rollups {fleet_rollups / 2**40:.2f} TiB (400 days kept)"
    )
    # One process and its PostgreSQL on this machine, against the fleet's whole ingest.
    ratio = (ingest["samples"] / ingest["wall"]) / values_needed
    print(
        f"capacity: needed={values_needed:.0f} values/s web_ingest_cores={web_ingest_cores:.1f} "
        f"db_cores={db_cores:.1f} rollup_workers={rollup_workers:.1f} "
        f"job_workers={job_workers:.1f} web_cores={web_cores:.1f} "
        f"tenant_month_gib={per_tenant_month / 2**30:.2f} ratio={ratio:.3f}"
    )


def main() -> None:
    args = parse_args()
    if os.environ.get("REDIS_URL"):
        raise SystemExit("run bench/capacity.py without REDIS_URL (file cache and broker)")
    with throwaway_database("capacity"):
        run(args)


if __name__ == "__main__":
    main()
