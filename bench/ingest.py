"""Benchmark telemetry ingest against a bare PostgreSQL binary COPY of the same samples.

In one run, the same N samples (``--samples``, default 200,000: 50 GPU hosts × 8 dcgm metrics
every 10 s) are stored

(a) by raw psycopg binary COPY into a bare table (same columns, no index, no RLS), one COPY;
(b) through the real endpoint, ``POST /api/v1/tenants/{slug}/telemetry/samples``, in batches of
    5,000 (``--batch``), with Django's test client: the full middleware stack, a bearer token
    with the ``ingest`` scope, JSON bodies naming resources by hostname. Each request
    validates its batch into series blocks, COPYs them into the staging table and inserts them,
    deduplicated against stored blocks, into the partitioned, row-level-secured block table,
    marking the hours that received samples for the rollup (see operations/telemetry/storage).

Inputs are prepared before the clock starts in both: the rows for (a), the JSON bodies for (b).
Each part runs ``--rounds`` times (tables emptied in between); the median counts.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python bench/ingest.py

It works in a throwaway database (``<name>_ingest_bench``, created, migrated and dropped) and a
temporary ``GROUNDWORK_VAR_DIR``, so nothing is left behind. ``--breakdown`` times each stage
of one round of (b) (framework, body, JSON, validation, encoding, each SQL round trip, commit)
in ms per request; ``--profile`` prints a cProfile of one round of (b). The machine is often
shared: the ratio of each round is printed too. The last line is
``ingest: a=<rows/s> b=<rows/s> ratio=<b/a>`` (medians of the rounds).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pstats
import random
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

GPU_METRICS = (
    ("gpu_utilization", 0, 100),
    ("gpu_memory_used_mib", 0, 640_000),
    ("gpu_memory_free_mib", 0, 640_000),
    ("gpu_power_watts", 0, 5_600),
    ("gpu_temperature_celsius", 20, 90),
    ("gpu_xid_errors", 0, 0),
    ("gpu_graphics_engine_active", 0, 100),
    ("gpu_tensor_active", 0, 100),
)
BARE_TABLE = "telemetry_bench_bare"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one round of (b)")
    parser.add_argument("--profile-sort", default="cumulative", help="e.g. tottime")
    parser.add_argument(
        "--breakdown", action="store_true", help="time each stage of one round of (b)"
    )
    return parser.parse_args()


def make_estate(hosts: int):
    """A tenant, its admin with an ingest token, and ``hosts`` GPU nodes."""
    from operations.inventory.models import ComputeResource
    from operations.telemetry import services as telemetry
    from tenants import services
    from tenants.models import Membership, Tenant, TenantRole, User
    from tenants.scoping import tenant_scope

    tenant = Tenant.objects.create(name="Ingest bench", slug="ingest-bench")
    user = User.objects.create(username="ingest-bench")
    Membership.objects.create(user=user, tenant=tenant, role=TenantRole.ADMIN)
    _token, plaintext = services.token_issue(
        user=user, name="bench", tenant=tenant, scopes=["read", "ingest"]
    )
    with tenant_scope(tenant.id):
        nodes = ComputeResource.objects.bulk_create(
            ComputeResource(
                tenant=tenant,
                hostname=f"bench-gpu-{number:03d}",
                kind="gpu_node",
                gpu_count=8,
                gpu_memory_gb=80,
            )
            for number in range(hosts)
        )
    # The hourly maintenance task makes today's and the next days' partitions ahead.
    telemetry.telemetry_partitions_ensure()
    return tenant, plaintext, [(node.pk, node.hostname) for node in nodes]


def make_samples(tenant_id: int, nodes, count: int):
    """Rows for (a) and the same samples as dicts for (b): every host × metric every 10 s."""
    from operations.telemetry.metrics import METRICS_BY_NAME

    rng = random.Random(42)
    per_tick = len(nodes) * len(GPU_METRICS)
    ticks = -(-count // per_tick)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    rows, samples = [], []
    for tick in range(ticks):
        ts = end - dt.timedelta(seconds=10 * (ticks - tick))
        text = ts.isoformat().replace("+00:00", "Z")
        for pk, hostname in nodes:
            for name, low, high in GPU_METRICS:
                value = round(rng.uniform(low, high), 2)
                rows.append((tenant_id, 1, pk, METRICS_BY_NAME[name].code, ts, value))
                samples.append(
                    {"resource": f"compute:{hostname}", "metric": name, "ts": text, "value": value}
                )
    return rows[:count], samples[:count]


def part_a(database_url: str, rows) -> float:
    """Rows per second of one binary COPY of ``rows`` into a bare table, committed."""
    import psycopg

    with psycopg.connect(database_url) as raw:
        return _copy_bare(raw, rows)


def _copy_bare(raw, rows) -> float:
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (tenant_id bigint, resource_kind smallint, "
            "resource_id bigint, metric smallint, ts timestamptz, value double precision)"
        )
        cursor.execute(f"TRUNCATE {BARE_TABLE}")
    raw.commit()
    started = time.perf_counter()
    with raw.cursor() as cursor:
        copy_sql = f"COPY {BARE_TABLE} FROM STDIN (FORMAT BINARY)"
        with cursor.copy(copy_sql) as copy:
            copy.set_types(["int8", "int2", "int8", "int2", "timestamptz", "float8"])
            for row in rows:
                copy.write_row(row)
    raw.commit()
    elapsed = time.perf_counter() - started
    with raw.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {BARE_TABLE}")
        assert cursor.fetchone()[0] == len(rows)
        cursor.execute(f"DROP TABLE {BARE_TABLE}")
    raw.commit()
    return len(rows) / elapsed


def empty_telemetry() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # The owner truncates past row-level security: the bench's own database.
        cursor.execute("TRUNCATE telemetry_sample_block, telemetry_dirty_hour")


def part_b(tenant, token: str, bodies: list[bytes], batch_sizes: list[int]) -> float:
    """Rows per second through the HTTP endpoint, batch after batch."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/tenants/{tenant.slug}/telemetry/samples"
    started = time.perf_counter()
    for body, size in zip(bodies, batch_sizes, strict=True):
        response = client.post(url, data=body, content_type="application/json", secure=True)
        if response.status_code != 200:
            raise SystemExit(f"ingest failed: {response.status_code} {response.content[:500]!r}")
        if response.json()["inserted"] != size:
            raise SystemExit(f"expected {size} new samples: {response.content!r}")
    elapsed = time.perf_counter() - started
    return sum(batch_sizes) / elapsed


def breakdown(tenant, token: str, bodies: list[bytes], batch_sizes: list[int]) -> dict:
    """Seconds spent in each stage of one round of (b), by wrapping the stages in place.

    The wrappers cost a little themselves; the stages add up to the round's total, and
    "framework" is what is left outside the view: middleware, authentication, throttle, tenant
    resolution and scope, response rendering (their SQL is listed apart).
    """
    import collections

    import psycopg

    from operations.telemetry import services, storage
    from operations.telemetry.api import views

    spent: dict[str, float] = collections.defaultdict(float)
    where = ["framework"]
    patches: list[tuple] = []

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            outer = where[0]
            where[0] = label
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started
                where[0] = outer

        patches.append((owner, name, original))
        setattr(owner, name, wrapper)

    def sql_label(query) -> str:
        words = " ".join(str(query).split()[:3]).lower()
        for prefix, label in (
            ("select set_config", "set_config (tenant scope)"),
            ("savepoint", "savepoints"),
            ("release savepoint", "savepoints"),
            ("create temp", "staging, locks, partitions check"),
            ("with staged", "block insert (dedupe, insert, hour markers)"),
            ('select "inventory_', "resource lookup"),
            ('select "tenants_apitoken', "token lookup"),
            ('select "tenants_tenant', "tenant lookup"),
        ):
            if words.startswith(prefix):
                return label
        return f"other SQL ({words[:30]})"

    original_execute = psycopg.Cursor.execute

    def execute(self, query, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original_execute(self, query, *args, **kwargs)
        finally:
            spent[f"  sql: {sql_label(query)}"] += time.perf_counter() - started

    original_commit = psycopg.Connection.commit

    def commit(self):
        started = time.perf_counter()
        try:
            return original_commit(self)
        finally:
            spent["  sql: COMMIT"] += time.perf_counter() - started

    timed(views.SampleIngestView, "post", "view")
    timed(views, "read_body", "body read (+ gunzip)")
    timed(views, "json_samples_document", "json.loads")
    timed(services, "telemetry_validate_samples", "validation")
    timed(services, "telemetry_store_blocks", "store")
    timed(storage, "group_resources", "group by resource")
    timed(storage, "encode_resources", "encode binary COPY")
    psycopg.Cursor.execute = execute
    psycopg.Connection.commit = commit
    try:
        total = 1 / part_b(tenant, token, bodies, batch_sizes) * sum(batch_sizes)
    finally:
        psycopg.Cursor.execute = original_execute
        psycopg.Connection.commit = original_commit
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)
    spent["total"] = total
    return dict(spent)


def print_breakdown(spent: dict, requests: int) -> None:
    """Per request, in ms: nested stages are shown inside their parent (times include them)."""
    total = spent.pop("total")
    print(f"breakdown of one round of (b), ms per request ({requests} requests):")
    # Labels are indented by nesting: a stage's time includes the stages under it.
    rows = [
        ("request total", total),
        ("  framework (outside the view)", total - spent.get("view", 0.0)),
        ("  view", spent.get("view", 0.0)),
        ("    body read (+ gunzip)", spent.get("body read (+ gunzip)", 0.0)),
        ("    JSON (orjson)", spent.get("json.loads", 0.0)),
        ("    validation (+ resource lookup, blocks)", spent.get("validation", 0.0)),
        ("    store (encode, SQL below)", spent.get("store", 0.0)),
        ("      encode binary COPY", spent.get("encode binary COPY", 0.0)),
    ]
    for label, seconds in rows:
        print(f"  {label:44s} {seconds * 1000 / requests:7.2f}")
    print("  SQL round trips (wherever they ran):")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        if label.startswith("  sql: "):
            print(f"    {label[7:]:42s} {seconds * 1000 / requests:7.2f}")


def describe_machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), PostgreSQL {version}, Python {sys.version.split()[0]}"


def main() -> None:
    args = parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        sys.exit("bench/ingest.py needs PostgreSQL: set DATABASE_URL=postgres://…")
    bench_db = f"{urlsplit(database_url).path.lstrip('/')}_ingest_bench"
    # A private var/ (file cache with the throttle's counters, secret key): removed at the end.
    var_dir = tempfile.mkdtemp(prefix="groundwork-ingest-bench-")
    os.environ["GROUNDWORK_VAR_DIR"] = var_dir
    # Created from the maintenance database: DATABASE_URL's own database need not exist.
    recreate_database(with_database(database_url, "postgres"), bench_db)
    try:
        bench_url = with_database(database_url, bench_db)
        setup_django(bench_url)
        run(args, bench_url)
    finally:
        from django.db import connections

        connections.close_all()
        recreate_database(with_database(database_url, "postgres"), bench_db, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)


def run(args, database_url: str) -> None:
    tenant, token, nodes = make_estate(args.hosts)
    rows, samples = make_samples(tenant.id, nodes, args.samples)
    bodies, sizes = [], []
    for start in range(0, len(samples), args.batch):
        chunk = samples[start : start + args.batch]
        bodies.append(json.dumps({"samples": chunk}).encode())
        sizes.append(len(chunk))
    print(f"machine: {describe_machine()}")
    print(
        f"samples: {len(rows)} ({args.hosts} hosts × {len(GPU_METRICS)} metrics, 10 s apart), "
        f"batches of {args.batch} ({sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB JSON)"
    )
    a_runs, b_runs = [], []
    for round_number in range(1, args.rounds + 1):
        a_runs.append(part_a(database_url, rows))
        empty_telemetry()
        b_runs.append(part_b(tenant, token, bodies, sizes))
        print(f"round {round_number}: a={a_runs[-1]:,.0f} rows/s  b={b_runs[-1]:,.0f} rows/s")
    if args.breakdown:
        empty_telemetry()
        print_breakdown(breakdown(tenant, token, bodies, sizes), len(bodies))
    if args.profile:
        empty_telemetry()
        profiler = cProfile.Profile()
        profiler.enable()
        part_b(tenant, token, bodies, sizes)
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.profile_sort).print_stats(40)
    a, b = statistics.median(a_runs), statistics.median(b_runs)
    ratios = ", ".join(f"{b_run / a_run:.3f}" for a_run, b_run in zip(a_runs, b_runs, strict=True))
    print(f"ratio b/a per round: {ratios}")
    print(f"(a) bare binary COPY, no index, no RLS: {a:,.0f} rows/s (median of {args.rounds})")
    print(f"(b) POST telemetry/samples, {args.batch} a request: {b:,.0f} rows/s")
    print(f"ingest: a={a:.0f} b={b:.0f} ratio={b / a:.3f}")


if __name__ == "__main__":
    main()
