"""Benchmark the job engine against bare Celery, with a real worker, on PostgreSQL and Redis.

Part (a): N bare Celery no-op tasks, then N no-op jobs through the engine (a JobRun row, its
outbox row, the on-commit send, the worker's claim, lease, log and finish), each dispatched
and drained through the same broker by the same worker. A marker task sent after the N items
(FIFO on one queue, one worker slot) says when the worker has drained them. The cost of each
is the wall time from the first dispatch to the drained marker; the figure is engine/bare.

Besides wall time, each round reads the CPU seconds its processes spent from /proc (this
process, the worker and its pool, the bench database's PostgreSQL backends, the Redis server)
and prints them per item, with ``cpu_ratio=`` (engine/bare): on two shared cores the wall
ratio follows the other processes' load; the CPU an item costs says where the time goes
(it moves with the load too: caches and context switches).

Part (b), the fleet compliance scan, plugs in through ``bench_fleet_scan`` once the compliance
job kind exists (see there).

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/jobs.py [--n 2000] [--rounds 3] \\
        [--batch 100] [--fleet]

It uses its own database (``<name>_bench``, created and migrated on first use) and its own
Redis database number for the broker, so neither the dev data nor other workers are touched.
The last line is ``ratio=<engine/bare>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLEET_SCAN_KIND = "compliance_scan"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="tasks and jobs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork")
    parser.add_argument(
        "--concurrency", type=int, default=2, help="worker processes (the Procfile runs 2)"
    )
    parser.add_argument("--redis-db", type=int, default=14, help="Redis db number for the broker")
    parser.add_argument(
        "--batch",
        type=int,
        default=0,
        help="submit the jobs with job_submit_many, this many per transaction (0: job_submit each)",
    )
    parser.add_argument(
        "--fresh-db", action="store_true", help="drop and re-create the bench database first"
    )
    parser.add_argument("--fleet", action="store_true", help="also run part (b), the fleet scan")
    parser.add_argument("--tenants", type=int, default=1000, help="part (b): tenants")
    parser.add_argument("--systems", type=int, default=20, help="part (b): AI systems per tenant")
    return parser.parse_args()


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def prepare_environment(args) -> dict:
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        sys.exit("bench/jobs.py needs PostgreSQL and Redis: set DATABASE_URL and REDIS_URL.")
    base_name = urlsplit(database_url).path.lstrip("/")
    bench_db = f"{base_name}_bench"
    ensure_database(database_url, bench_db, fresh=args.fresh_db)
    env = {
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "msp.settings"),
        "DATABASE_URL": with_path(database_url, f"/{bench_db}"),
        "CELERY_BROKER_URL": with_path(redis_url, f"/{args.redis_db}"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    return {**os.environ, **env}


def ensure_database(database_url: str, name: str, *, fresh: bool) -> None:
    import psycopg

    # From the maintenance database: DATABASE_URL's own database need not exist.
    with psycopg.connect(with_path(database_url, "/postgres"), autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def start_worker(env: dict, pool: str, concurrency: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "msp",
            "worker",
            "-Q",
            "jobs",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency if pool == "prefork" else 1),
            "-n",
            f"bench-{uuid.uuid4().hex[:6]}@%h",
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_marker(timeout: float = 600) -> None:
    """Send a marker behind everything queued and wait until the worker has run it."""
    from django.core.cache import cache

    from operations.jobs.tasks import DIAGNOSTIC_KEY, diagnostic_ping

    nonce = uuid.uuid4().hex
    diagnostic_ping.apply_async(args=[nonce], queue="jobs")
    deadline = time.monotonic() + timeout
    while cache.get(DIAGNOSTIC_KEY.format(nonce=nonce)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not drain the queue within {timeout:.0f}s")
        time.sleep(0.01)


def purge_queues() -> None:
    from msp.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in ("jobs", "maintenance"):
            channel.queue_purge(queue)


def bench_tenant():
    from tenants.models import Tenant
    from tenants.services import tenant_create

    tenant = Tenant.objects.filter(slug="bench-jobs").first()
    return tenant or tenant_create(name="Bench Jobs", slug="bench-jobs")


def clear_runs(tenant) -> None:
    from operations.jobs.models import JobDispatch, JobRun
    from tenants.scoping import tenant_scope

    with tenant_scope(tenant.id):
        JobRun.objects.all().delete()
    JobDispatch.objects.all().delete()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _worker_pids(worker: subprocess.Popen) -> list[int]:
    pids = [worker.pid]
    try:
        with open(f"/proc/{worker.pid}/task/{worker.pid}/children") as children:
            pids += [int(pid) for pid in children.read().split()]
    except OSError:
        pass
    return pids


def _backend_pids() -> list[int]:
    """PostgreSQL backends connected to the bench database (this process's and the worker's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend'"
        )
        return [pid for (pid,) in cursor.fetchall()]


class CpuMeter:
    """CPU seconds spent by each side of a round, read from /proc.

    Every process runs on the same two cores, so a quiet round's wall time is close to the CPU
    it takes divided by the cores. ``bench``: this
    process (the submitter, its sender thread); ``worker``: the Celery worker and its pool;
    ``postgres``: the backends of the bench database; ``redis``: the broker (shared with
    anyone else using that server, so read it as an upper bound). Linux only (else zeros).
    """

    def __init__(self, worker: subprocess.Popen | None):
        self.worker = worker
        self.redis_pids = [
            int(entry.name)
            for entry in Path("/proc").glob("[0-9]*")
            if _read(entry / "comm").strip() == "redis-server"
        ]

    def snapshot(self) -> dict:
        # Backends come and go (connection reuse, CONN_MAX_AGE): the ones alive now, counted
        # in both snapshots, so one born in between counts its whole life to this round.
        self.backends = sorted(set(getattr(self, "backends", [])) | set(_backend_pids()))
        return {
            "bench": sum(os.times()[:2]),
            "worker": sum(map(_process_cpu_seconds, _worker_pids(self.worker)))
            if self.worker is not None
            else 0.0,
            # Per backend: one gone by now reads zero and is left out.
            "postgres": {pid: cpu for pid in self.backends if (cpu := _process_cpu_seconds(pid))},
            "redis": sum(map(_process_cpu_seconds, self.redis_pids)),
        }

    @staticmethod
    def per_item(before: dict, after: dict, n: int) -> dict[str, float]:
        def spent(key: str) -> float:
            if key != "postgres":
                return after[key] - before[key]
            # A backend gone by the second reading counts nothing (its CPU in this round is
            # lost, a little under the truth) instead of taking its whole earlier life off it.
            return sum(cpu - before[key].get(pid, 0.0) for pid, cpu in after[key].items())

        return {key: 1000 * spent(key) / n for key in before}


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def describe_cpu(label: str, per_item: dict[str, float]) -> str:
    parts = ", ".join(f"{key} {value:.2f}" for key, value in per_item.items())
    return f"{label} CPU ms per item: {parts}; total {sum(per_item.values()):.2f}"


def bare_round(n: int) -> float:
    from operations.jobs.tasks import noop_task

    started = time.perf_counter()
    for _ in range(n):
        noop_task.apply_async()
    wait_for_marker()
    return time.perf_counter() - started


def engine_round(n: int, tenant, batch: int = 0) -> float:
    from operations.jobs.execution import runs_in
    from operations.jobs.models import JobStatus
    from operations.jobs.services import job_submit
    from tenants.scoping import scoped_atomic

    def succeeded() -> int:
        with scoped_atomic(tenant.id):
            return runs_in(tenant.id).filter(status=JobStatus.SUCCEEDED).count()

    started = time.perf_counter()
    if batch:
        from operations.jobs.services import job_submit_many

        # One transaction (one disk sync) per batch; each job still has its own run and message.
        for start in range(0, n, batch):
            job_submit_many(tenant=tenant, kind="noop", parameters=[{}] * min(batch, n - start))
    else:
        for _ in range(n):
            job_submit(tenant=tenant, kind="noop")
    wait_for_marker()
    # With several worker processes the last jobs may finish just after the marker.
    deadline = time.monotonic() + 60
    while (done := succeeded()) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {done} of {n} jobs succeeded")
        time.sleep(0.005)
    return time.perf_counter() - started


def bench_engine_vs_bare(args, env) -> float:
    tenant = bench_tenant()
    purge_queues()
    worker = start_worker(env, args.pool, args.concurrency)
    meter = CpuMeter(worker)
    cpu: dict[str, list[dict]] = {"bare": [], "engine": []}

    def metered(label: str, round_fn) -> float:
        # The last round's runs are deleted before the clock and the meter start: neither
        # figure counts that clean-up (it loads every run through Django's delete collector).
        clear_runs(tenant)
        before = meter.snapshot()
        seconds = round_fn()
        cpu[label].append(CpuMeter.per_item(before, meter.snapshot(), args.n))
        return seconds

    try:
        wait_for_marker(timeout=120)  # the worker is up and consuming
        # Warm-up: imports, connections, caches on both sides.
        bare_round(min(200, args.n))
        clear_runs(tenant)
        engine_round(min(200, args.n), tenant, args.batch)
        bare, engine = [], []
        for index in range(args.rounds):
            # Alternate the order so that drift (autovacuum, caches) hits both alike.
            sides = [
                (bare, "bare", lambda: bare_round(args.n)),
                (engine, "engine", lambda: engine_round(args.n, tenant, args.batch)),
            ]
            for figures, label, round_fn in sides[:: -1 if index % 2 else 1]:
                figures.append(metered(label, round_fn))
            print(
                f"round {index + 1}: bare {bare[-1]:.2f} s, engine {engine[-1]:.2f} s "
                f"({engine[-1] / bare[-1]:.2f}x)",
                flush=True,
            )
        clear_runs(tenant)
    finally:
        stop_worker(worker)
    medians = {}
    for label, rounds in cpu.items():
        medians[label] = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
        print(describe_cpu(f"{label} (median of {args.rounds} rounds)", medians[label]))
    bare_cpu, engine_cpu = sum(medians["bare"].values()), sum(medians["engine"].values())
    print(f"cpu_ratio={engine_cpu / bare_cpu:.2f} (engine/bare CPU seconds per item)")
    bare_s, engine_s = statistics.median(bare), statistics.median(engine)
    print(
        f"bare celery: {args.n} tasks in {bare_s:.2f} s ({1000 * bare_s / args.n:.2f} ms each); "
        f"engine: {args.n} jobs in {engine_s:.2f} s ({1000 * engine_s / args.n:.2f} ms each); "
        f"median of {args.rounds} rounds; {args.pool} worker, concurrency {args.concurrency}; "
        + (f"jobs submitted {args.batch} per batch" if args.batch else "jobs submitted one by one")
    )
    return engine_s / bare_s


def bench_fleet_scan(args, env) -> float | None:
    """Part (b): wall seconds of a fleet compliance scan over generated data, or None.

    ``bench.compliance_fleet.generate_fleet`` makes ``args.tenants`` active tenants with
    ``args.systems`` AI systems each (datasets, dataset use, deployments, compute) by bulk
    insert, once per bench database. Every compliance row is then truncated, a worker started,
    and ``job_submit_fleet(kind=FLEET_SCAN_KIND)`` timed until its parent run finishes
    (``JobRun.fleet``; its ``children_*`` counts must show every tenant succeeded): first cold
    (every finding new: the figure, ``fleet_seconds=``), then again as the nightly re-run
    (``rescan_seconds=``). Goal: 1,000 tenants × 20 systems in ≤ 30 s on the 2-core machine.

        DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
        REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/jobs.py --fleet \\
            [--tenants 1000] [--systems 20] [--n 200 --rounds 1]
    """
    from operations.jobs.exceptions import UnknownJobKind
    from operations.jobs.registry import get_job_kind

    try:
        get_job_kind(FLEET_SCAN_KIND)
    except UnknownJobKind:
        print(f"part (b) skipped: no '{FLEET_SCAN_KIND}' job kind is registered yet")
        return None
    from bench.compliance_fleet import generate_fleet, reset_fleet_compliance

    tenant_ids = generate_fleet(tenants=args.tenants, systems=args.systems)
    reset_fleet_compliance()
    purge_queues()
    worker = start_worker(env, args.pool, args.concurrency)
    try:
        wait_for_marker(timeout=120)  # the worker is up and consuming
        # First every finding is new (the cold scan, the figure); then the nightly re-run.
        cold = fleet_scan_round(tenant_ids)
        nightly = fleet_scan_round(tenant_ids)
    finally:
        stop_worker(worker)
    for label, (elapsed, parent) in (("cold", cold), ("nightly re-run", nightly)):
        print(
            f"fleet scan ({label}): {parent.children_total} tenants × {args.systems} AI systems, "
            f"{parent.children_succeeded} succeeded, {parent.children_failed} failed, "
            f"{parent.children_cancelled} cancelled, in {elapsed:.2f} s "
            f"({args.pool} worker, concurrency {args.concurrency})"
        )
        if parent.children_succeeded != len(tenant_ids):
            raise SystemExit(
                f"part (b): {parent.status}: {parent.error or parent.progress_message}"
            )
    print(f"rescan_seconds={nightly[0]:.2f}")
    return cold[0]


def fleet_scan_round(tenant_ids: list[int]):
    """Submit one fleet scan and wait for its parent to finish: (seconds, parent run)."""
    from operations.jobs.models import JobRun
    from operations.jobs.services import job_submit_fleet

    started = time.perf_counter()
    parent = job_submit_fleet(kind=FLEET_SCAN_KIND, tenant_ids=tenant_ids, label="bench")
    deadline = time.monotonic() + 1800
    while True:
        parent = JobRun.fleet.get(pk=parent.pk)
        if parent.is_finished:
            return time.perf_counter() - started, parent
        if time.monotonic() > deadline:
            raise SystemExit(f"the fleet scan did not finish: {parent.progress_message}")
        time.sleep(0.05)


def conditions(when: str) -> str:
    """What moves the figures besides the code: the machine's load and autovacuum.

    Every round trip waits for a scheduler slice on a busy machine, so absolute seconds follow
    the load (other processes on the same cores); the ratio much less, as both sides pay it.
    Without autovacuum, the runs each round deletes stay as dead rows and index entries, so
    later rounds (and a reused bench database) get slower: ``--fresh-db`` starts clean.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cores = os.cpu_count()
    return f"conditions {when}: load average {load} on {cores} cores; autovacuum {autovacuum}"


def main() -> None:
    args = parse_args()
    env = prepare_environment(args)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings

    if not getattr(settings, "CELERY_DB_REUSE_MAX", None):
        print(
            "note: CELERY_DB_REUSE_MAX is not set, so Celery closes the database connection "
            "after every task and each job opens a new one (see operations/jobs/celery_config.py)"
        )
    print(conditions("before"), flush=True)
    ratio = bench_engine_vs_bare(args, env)
    fleet_seconds = bench_fleet_scan(args, env) if args.fleet else None
    print(conditions("after"), flush=True)
    if fleet_seconds is not None:
        rate = args.tenants / fleet_seconds
        print(f"fleet_seconds={fleet_seconds:.2f} tenants_per_second={rate:.1f}")
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
