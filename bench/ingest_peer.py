"""Groundwork's dcgm-exporter ingest against VictoriaMetrics on the same scrapes, over real HTTP.

In one run, the same requests, each the dcgm-exporter scrapes of ``--hosts`` hosts (50) ×
``--gpus`` GPUs (8) × the 8 DCGM families Groundwork keeps, with dcgm-exporter's labels
(``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``, driver version)
and a millisecond timestamp per line (10 s apart from one request to the next), are posted by
``--clients`` (2) concurrent clients, each on its own keep-alive connection, to

(vm) ``/usr/bin/victoria-metrics`` (Debian's ``victoria-metrics`` package; a bench-only
     dependency) on a free port with a temporary data directory:
     ``POST /api/v1/import/prometheus``;
(gw) Groundwork's gunicorn as the Procfile runs it (2 workers) on a fresh PostgreSQL database
     (``<DATABASE_URL's name>_ingest_peer``) holding a tenant, an ingest token and the hosts'
     inventory (GPU UUIDs listed): ``POST /api/v1/tenants/<slug>/telemetry/prometheus``.

Both get ``--warmup`` requests first (older timestamps, not timed: Groundwork learns the GPUs
and makes the day's partitions, each worker warms its caches). Series per second = series
posted / wall time of the timed requests; a request that is not answered with success stops
the bench. Afterwards each side is asked how many series it kept (VictoriaMetrics: one per GPU
and family; Groundwork: per GPU and family, plus the node aggregates), so neither wins by
keeping less.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
        REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/ingest_peer.py [--breakdown]

``--breakdown`` then posts ``--breakdown-requests`` more scrapes in this process through
Django's test client (the same middleware, authentication and view, no HTTP) and shows where
Groundwork's time goes per request: parsing, mapping (labels → resources, checks), storing
(encoding, each SQL round trip), the commit, and the framework around the view (middleware,
token and tenant, response), and the CPU spent by this process and by its PostgreSQL backend
(the database's share, which wall-clock splits cannot show on a loaded machine). ``--profile``
prints a cProfile of that in-process phase.

The clients share the two cores with the server under test: the figures are for this machine as
a whole. The last line is ``ingest_peer: gw=<series/s> vm=<series/s> ratio=<gw/vm>``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import datetime as dt
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import recreate_database, setup_django, with_database  # noqa: E402

VICTORIA_METRICS = "/usr/bin/victoria-metrics"
TENANT_SLUG = "ingest-peer"
# (family, help, low, high, integer?) as dcgm-exporter's default counters export them.
FAMILIES = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", 0, 100, True),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", 0, 81_559, True),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", 0, 81_559, True),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", 60, 700, False),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", 25, 85, True),
    ("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", 0, 0, True),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Ratio of time the graphics engine is active.", 0, 1, False),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Ratio of cycles the tensor pipes active.", 0, 1, False),
)
MODEL = "NVIDIA H100 80GB HBM3"
DRIVER = "535.129.03"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--requests", type=int, default=60, help="timed requests, all clients")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (Procfile: 2)")
    parser.add_argument("--breakdown", action="store_true", help="where Groundwork's time goes")
    parser.add_argument("--breakdown-requests", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process phase")
    parser.add_argument("--profile-sort", default="tottime")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gpu_uuid(host: int, gpu: int) -> str:
    return f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'ingest-peer-{host}-{gpu}')}"


def hostname(host: int) -> str:
    return f"peer-gpu-{host:03d}"


def scrape_body(hosts: int, gpus: int, ts: dt.datetime, seed: int) -> bytes:
    """The scrapes of every host at ``ts``, one after the other, as dcgm-exporter writes them."""
    import random

    rng = random.Random(seed)
    millis = int(ts.timestamp() * 1000)
    lines = []
    for host in range(hosts):
        for family, help_text, low, high, integer in FAMILIES:
            lines.append(f"# HELP {family} {help_text}")
            lines.append(f"# TYPE {family} gauge")
            for gpu in range(gpus):
                labels = (
                    f'gpu="{gpu}",UUID="{gpu_uuid(host, gpu)}",'
                    f'pci_bus_id="00000000:{0x18 + 16 * gpu:02X}:00.0",device="nvidia{gpu}",'
                    f'modelName="{MODEL}",Hostname="{hostname(host)}",'
                    f'DCGM_FI_DRIVER_VERSION="{DRIVER}"'
                )
                value = rng.randint(low, high) if integer else round(rng.uniform(low, high), 6)
                lines.append(f"{family}{{{labels}}} {value} {millis}")
    return ("\n".join(lines) + "\n").encode()


# --- The two servers ----------------------------------------------------------------------------


def start_victoria_metrics(data_dir: str, port: int) -> subprocess.Popen:
    if not os.access(VICTORIA_METRICS, os.X_OK):
        raise SystemExit(
            f"{VICTORIA_METRICS} is missing: apt-get install -y victoria-metrics (bench only)"
        )
    process = subprocess.Popen(
        [
            VICTORIA_METRICS,
            f"-storageDataPath={data_dir}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=1",
            "-loggerLevel=ERROR",
            "-search.latencyOffset=0s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_healthy(process, f"http://127.0.0.1:{port}/health", "victoria-metrics")
    return process


def start_gunicorn(env: dict, port: int, workers: int) -> subprocess.Popen:
    # The Procfile's command line (its access log included), on the bench's port.
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "msp.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--graceful-timeout",
            "10",
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_healthy(process, f"http://127.0.0.1:{port}/healthz", "gunicorn")
    return process


def wait_healthy(process: subprocess.Popen, url: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} before answering {url}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not answer {url} within 60 s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# --- Posting ------------------------------------------------------------------------------------


def post_all(url: str, bodies: list[bytes], clients: int, headers: dict, ok: tuple) -> float:
    """Post ``bodies`` (client n takes every n-th) concurrently; the wall time in seconds."""
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        session = requests.Session()
        session.headers.update(headers)
        barrier.wait()
        for body in bodies[number::clients]:
            response = session.post(url, data=body, timeout=120)
            if response.status_code not in ok:
                failures.append(f"{response.status_code} {response.text[:500]}")
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"POST {url} failed: {failures[0]}")
    return elapsed


# --- Groundwork's estate and what it kept -------------------------------------------------------


def make_estate(hosts: int, gpus: int):
    """The tenant, an ingest token, ``hosts`` GPU nodes listing their GPUs' UUIDs."""
    from operations.inventory.models import ComputeResource
    from operations.telemetry import services as telemetry
    from tenants import services
    from tenants.models import Membership, Tenant, TenantRole, User
    from tenants.scoping import tenant_scope

    tenant = Tenant.objects.create(name="Ingest peer bench", slug=TENANT_SLUG)
    user = User.objects.create(username="ingest-peer")
    Membership.objects.create(user=user, tenant=tenant, role=TenantRole.ADMIN)
    _token, plaintext = services.token_issue(
        user=user, name="bench", tenant=tenant, scopes=["read", "ingest"]
    )
    with tenant_scope(tenant.id):
        ComputeResource.objects.bulk_create(
            ComputeResource(
                tenant=tenant,
                hostname=hostname(host),
                kind="gpu_node",
                gpu_model=MODEL,
                gpu_count=gpus,
                gpu_memory_gb=80,
                gpu_uuids=[gpu_uuid(host, gpu) for gpu in range(gpus)],
            )
            for host in range(hosts)
        )
    telemetry.telemetry_partitions_ensure()
    return tenant, plaintext


def groundwork_series(tenant) -> dict[str, int]:
    """Series (kind, resource, metric) Groundwork holds for the tenant, by resource kind."""
    from django.db import connection, transaction

    from operations.telemetry.metrics import RESOURCE_KIND_NAMES
    from tenants.scoping import tenant_scope

    with transaction.atomic(), tenant_scope(tenant.id), connection.cursor() as cursor:
        cursor.execute(
            "SELECT resource_kind, count(*) FROM (SELECT DISTINCT b.resource_kind, "
            "b.resource_id, u.metric FROM telemetry_sample_block b "
            "CROSS JOIN LATERAL unnest(b.metrics) AS u(metric) WHERE b.tenant_id = %s) AS s "
            "GROUP BY 1",
            [tenant.id],
        )
        return {RESOURCE_KIND_NAMES.get(kind, str(kind)): n for kind, n in cursor.fetchall()}


def victoria_series(base: str) -> int:
    requests.get(f"{base}/internal/force_flush", timeout=30)
    found = requests.get(
        f"{base}/api/v1/series",
        params={"match[]": '{__name__=~"DCGM_.+"}', "start": "-1d"},
        timeout=60,
    )
    found.raise_for_status()
    return len(found.json()["data"])


# --- Where the time goes (in process) -----------------------------------------------------------


def breakdown(tenant, token: str, bodies: list[bytes], profile: bool, sort: str):
    """Milliseconds per request spent in each stage, over ``bodies`` posted in this process."""
    import psycopg
    from django.test import Client

    from operations.telemetry import prometheus, services, storage
    from operations.telemetry.api import views

    spent: dict[str, float] = collections.defaultdict(float)
    patches: list[tuple] = []

    def timed(owner, name: str, label: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        patches.append((owner, name, original))
        setattr(owner, name, wrapper)

    def sql_label(query) -> str:
        text = " ".join(str(query).split()[:3]).lower()
        if isinstance(query, bytes):
            text = " ".join(query.decode(errors="replace").split()[:3]).lower()
        for prefix, label in (
            ("select set_config", "tenant scope (set_config)"),
            ("savepoint", "savepoints"),
            ("release savepoint", "savepoints"),
            ("create temp", "staging, locks, partitions check"),
            ("with staged", "block insert (dedupe, insert, hour markers)"),
            ('select "inventory_', "inventory lookup"),
            ("select md5(coalesce(string_agg(v,", "inventory version (kept fleet index)"),
            ('select "tenants_apitoken', "token lookup"),
            ('select "tenants_tenant', "tenant lookup"),
            ("copy", "COPY to staging"),
        ):
            if text.startswith(prefix):
                return label
        return f"other ({text[:40]})"

    original_execute, original_commit = psycopg.Cursor.execute, psycopg.Connection.commit
    original_copy = psycopg.Cursor.copy

    def execute(self, query, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original_execute(self, query, *args, **kwargs)
        finally:
            spent[f"sql: {sql_label(query)}"] += time.perf_counter() - started

    class _TimedCopy:
        def __init__(self, inner):
            self.inner = inner

        def __enter__(self):
            self.started = time.perf_counter()
            return self.inner.__enter__()

        def __exit__(self, *exc):
            try:
                return self.inner.__exit__(*exc)
            finally:
                spent["sql: COPY to staging"] += time.perf_counter() - self.started

    def copy(self, statement, *args, **kwargs):
        return _TimedCopy(original_copy(self, statement, *args, **kwargs))

    def commit(self):
        started = time.perf_counter()
        try:
            return original_commit(self)
        finally:
            spent["sql: COMMIT"] += time.perf_counter() - started

    timed(views.PrometheusIngestView, "post", "view")
    timed(views, "read_body", "body read")
    timed(prometheus, "parse_scrape", "parse")
    timed(prometheus, "telemetry_ingest_columns", "map + store")
    for name in ("telemetry_store_rows", "telemetry_store_blocks"):
        timed(prometheus, name, "store")
    timed(services, "telemetry_store_blocks", "store (services)")
    timed(storage, "encode_resources", "encode COPY")
    timed(storage, "group_resources", "group blocks")
    timed(storage, "group_blocks", "group blocks")
    psycopg.Cursor.execute, psycopg.Cursor.copy = execute, copy
    psycopg.Connection.commit = commit
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/api/v1/tenants/{tenant.slug}/telemetry/prometheus"
    # The first request of a process imports the URLconf and views: not part of the figure.
    warm, bodies = bodies[0], bodies[1:]
    client.post(url, data=warm, content_type="text/plain", secure=True)
    spent.clear()
    backend = _backend_pid()
    cpu_started, backend_started = time.process_time(), _process_cpu(backend)
    profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for body in bodies:
            response = client.post(url, data=body, content_type="text/plain", secure=True)
            if response.status_code != 200:
                raise SystemExit(f"breakdown: {response.status_code} {response.content[:500]!r}")
        if profiler:
            profiler.disable()
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        backend_cpu = _process_cpu(backend) - backend_started
        if _backend_pid() != backend:  # the connection was renewed meanwhile (CONN_MAX_AGE)
            backend_cpu = float("nan")
    finally:
        psycopg.Cursor.execute, psycopg.Cursor.copy = original_execute, original_copy
        psycopg.Connection.commit = original_commit
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)
    per = 1000 / len(bodies)
    store = spent.get("store", 0.0) or spent.get("store (services)", 0.0)
    mapping = spent.get("map + store", 0.0) - store
    rows = [
        ("request total", total),
        ("  framework: middleware, token, tenant, response", total - spent.get("view", 0.0)),
        ("  view", spent.get("view", 0.0)),
        ("    body read", spent.get("body read", 0.0)),
        ("    parse (text → series)", spent.get("parse", 0.0)),
        ("    map (labels → resources, checks, rows)", mapping),
        ("    store (encode + SQL)", store),
        ("      group + encode COPY", spent.get("group blocks", 0) + spent.get("encode COPY", 0)),
    ]
    print(f"breakdown: ms per request over {len(bodies)} requests in process (test client)")
    for label, seconds in rows:
        print(f"  {label:52s} {seconds * per:8.2f}")
    print(f"  {'CPU: this process (Python)':52s} {cpu * per:8.2f}")
    print(f"  {'CPU: its PostgreSQL backend':52s} {backend_cpu * per:8.2f}")
    print("  SQL round trips (wherever they ran):")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        if label.startswith("sql: "):
            print(f"    {label[5:]:50s} {seconds * per:8.2f}")
    if profiler:
        pstats.Stats(profiler).sort_stats(sort).print_stats(35)


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux; 0 where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- Main ---------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        sys.exit("bench/ingest_peer.py needs PostgreSQL: set DATABASE_URL=postgres://…")
    bench_db = f"{urlsplit(database_url).path.lstrip('/') or 'groundwork'}_ingest_peer"
    admin_url = with_database(database_url, "postgres")
    var_dir = tempfile.mkdtemp(prefix="ingest-peer-")
    vm_dir = tempfile.mkdtemp(prefix="ingest-peer-vm-")
    os.environ["GROUNDWORK_VAR_DIR"] = var_dir
    os.environ["CACHE_KEY_PREFIX"] = f"ingest-peer-{os.getpid()}"
    recreate_database(admin_url, bench_db)
    vm = gunicorn = None
    try:
        bench_url = with_database(database_url, bench_db)
        setup_django(bench_url)
        tenant, token = make_estate(args.hosts, args.gpus)
        end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
        extra = args.breakdown_requests + 1 if args.breakdown or args.profile else 0
        total = args.warmup + args.requests + extra
        ticks = [end - dt.timedelta(seconds=10 * (total - n)) for n in range(total)]
        bodies = [scrape_body(args.hosts, args.gpus, ts, n) for n, ts in enumerate(ticks)]
        warmup, timed = bodies[: args.warmup], bodies[args.warmup : args.warmup + args.requests]
        per_request = args.hosts * args.gpus * len(FAMILIES)
        size = sum(map(len, timed)) / len(timed) / 1024
        print(
            f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; requests of "
            f"{args.hosts} hosts × {args.gpus} GPUs × {len(FAMILIES)} families = {per_request} "
            f"series ({size:.0f} KiB), {args.requests} timed, {args.clients} clients"
        )

        vm_port = free_port()
        vm = start_victoria_metrics(vm_dir, vm_port)
        vm_base = f"http://127.0.0.1:{vm_port}"
        vm_url = f"{vm_base}/api/v1/import/prometheus"
        post_all(vm_url, warmup, args.clients, {}, (204,))
        vm_seconds = post_all(vm_url, timed, args.clients, {}, (204,))
        vm_rate = per_request * len(timed) / vm_seconds
        vm_kept = victoria_series(vm_base)
        stop(vm)
        vm = None
        print(f"vm: {vm_rate:,.0f} series/s ({vm_seconds:.2f} s); series kept: {vm_kept}")

        env = {
            **os.environ,
            "DATABASE_URL": bench_url,
            "DJANGO_HTTPS": "false",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_OWNER_URL", None)
        gw_port = free_port()
        gunicorn = start_gunicorn(env, gw_port, args.workers)
        gw_url = f"http://127.0.0.1:{gw_port}/api/v1/tenants/{TENANT_SLUG}/telemetry/prometheus"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}
        post_all(gw_url, warmup, args.clients, headers, (200,))
        gw_seconds = post_all(gw_url, timed, args.clients, headers, (200,))
        gw_rate = per_request * len(timed) / gw_seconds
        stop(gunicorn)
        gunicorn = None
        kept = groundwork_series(tenant)
        shown = ", ".join(f"{kind} {n}" for kind, n in sorted(kept.items()))
        print(f"gw: {gw_rate:,.0f} series/s ({gw_seconds:.2f} s); series kept: {shown}")

        if args.breakdown or args.profile:
            breakdown(
                tenant,
                token,
                bodies[args.warmup + args.requests :] or bodies[: args.warmup],
                args.profile,
                args.profile_sort,
            )
        print(f"machine load after: {os.getloadavg()[0]:.2f}")
        print(f"ingest_peer: gw={gw_rate:.0f} vm={vm_rate:.0f} ratio={gw_rate / vm_rate:.3f}")
    finally:
        stop(gunicorn)
        stop(vm)
        from django.db import connections

        connections.close_all()
        recreate_database(admin_url, bench_db, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)
        shutil.rmtree(vm_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
