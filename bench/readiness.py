"""Benchmark the nightly readiness scan over a fleet, with a real worker, on PostgreSQL and Redis.

The fleet is ``bench.compliance_fleet``'s (1,000 active tenants × 20 AI systems by default),
each given one submitted readiness assessment (seeded answers, bulk inserts). Then, with one
worker: a compliance fleet scan brings the findings and scores the readiness signals read (cold,
untimed, when the fleet has none), a timed compliance re-run is the baseline, and the readiness
fleet scan (``job_submit_fleet(kind="readiness_scan")``, one child run per tenant, each a
snapshot) is the figure, timed until its parent run finishes. Both run in the same process
against the same database and worker, one after the other.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/readiness.py \\
        [--tenants 1000] [--systems 20] [--redis-db 14] [--fresh-db]

It uses ``<name>_bench`` (as ``bench/jobs.py``). The last lines are
``readiness_fleet_seconds=`` and ``ratio=<readiness / compliance re-run>``. Goal: ≤ 15 s for
1,000 tenants × 20 systems on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.jobs import (  # noqa: E402 - after the path
    conditions,
    prepare_environment,
    purge_queues,
    start_worker,
    stop_worker,
    wait_for_marker,
)

CHUNK = 100  # tenants per transaction when seeding assessments


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--systems", type=int, default=20, help="AI systems per tenant")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis db number for the broker")
    parser.add_argument(
        "--fresh-db", action="store_true", help="drop and re-create the bench database first"
    )
    return parser.parse_args()


def seed_assessments(tenant_ids: list[int], *, seed: int = 7) -> int:
    """One submitted assessment per fleet tenant that has none; returns how many were made."""
    from django.db import transaction
    from django.utils import timezone

    from operations.readiness.models import Assessment, AssessmentAnswer, AssessmentStatus
    from operations.readiness.selectors import framework_questions, readiness_framework_current
    from tenants.scoping import tenant_scope

    framework = readiness_framework_current()
    keys = list(framework_questions(framework.definition))
    rng = random.Random(seed)
    now = timezone.now()
    made = 0
    for start in range(0, len(tenant_ids), CHUNK):
        chunk = tenant_ids[start : start + CHUNK]
        with transaction.atomic(), tenant_scope(*chunk):
            done = set(Assessment.objects.values_list("tenant_id", flat=True))
            todo = [tenant_id for tenant_id in chunk if tenant_id not in done]
            assessments = Assessment.objects.bulk_create(
                [
                    Assessment(
                        tenant_id=tenant_id,
                        framework=framework,
                        status=AssessmentStatus.SUBMITTED,
                        submitted_at=now,
                    )
                    for tenant_id in todo
                ]
            )
            maturity = {a.pk: rng.randint(0, 4) for a in assessments}
            AssessmentAnswer.objects.bulk_create(
                [
                    AssessmentAnswer(
                        tenant_id=a.tenant_id,
                        assessment=a,
                        question_key=key,
                        value=max(0, min(4, maturity[a.pk] + rng.choice((-1, 0, 0, 1)))),
                        answered_at=now,
                    )
                    for a in assessments
                    for key in keys
                ],
                batch_size=5000,
            )
            made += len(assessments)
    return made


def worker_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) the worker and its pool processes have used so far, from
    /proc (None elsewhere): unlike wall time, it barely moves with other processes' load."""
    proc = Path("/proc")
    if not (proc / str(pid)).exists():
        return None
    stats = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                # The command may hold spaces: the fields after its closing parenthesis.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(child for child, (parent, _) in stats.items() if parent == current)
    ticks = sum(stats[member][1] for member in tree if member in stats)
    return ticks / os.sysconf("SC_CLK_TCK")


def fleet_round(kind: str, tenant_ids: list[int]):
    """Submit one fleet run of ``kind``; wait for its parent: (seconds, parent run)."""
    from operations.jobs.models import JobRun
    from operations.jobs.services import job_submit_fleet

    started = time.perf_counter()
    parent = job_submit_fleet(kind=kind, tenant_ids=tenant_ids, label="bench")
    deadline = time.monotonic() + 1800
    while True:
        parent = JobRun.fleet.get(pk=parent.pk)
        if parent.is_finished:
            elapsed = time.perf_counter() - started
            if parent.children_succeeded != len(tenant_ids):
                raise SystemExit(
                    f"{kind}: {parent.status}: {parent.error or parent.progress_message}"
                )
            return elapsed, parent
        if time.monotonic() > deadline:
            raise SystemExit(f"{kind} did not finish: {parent.progress_message}")
        time.sleep(0.05)


def main() -> None:
    args = parse_args()
    env = prepare_environment(args)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.compliance_fleet import generate_fleet
    from operations.compliance.models import ComplianceScan
    from operations.readiness.models import ReadinessScore
    from tenants.scoping import tenant_scope

    tenant_ids = generate_fleet(tenants=args.tenants, systems=args.systems)
    made = seed_assessments(tenant_ids)
    print(f"{len(tenant_ids)} tenants; {made} readiness assessments seeded now", flush=True)
    with tenant_scope(*tenant_ids):
        scanned = ComplianceScan.objects.exists()
    print(conditions("before"), flush=True)
    purge_queues()
    worker = start_worker(env, args.pool, args.concurrency)
    try:
        wait_for_marker(timeout=120)  # the worker is up and consuming
        if not scanned:
            cold, _ = fleet_round("compliance_scan", tenant_ids)
            print(f"compliance fleet scan (cold, untimed for the ratio): {cold:.2f} s", flush=True)
        cpu_start = worker_cpu_seconds(worker.pid)
        compliance, _ = fleet_round("compliance_scan", tenant_ids)
        print(f"compliance fleet re-run (baseline): {compliance:.2f} s", flush=True)
        cpu_middle = worker_cpu_seconds(worker.pid)
        readiness, parent = fleet_round("readiness_scan", tenant_ids)
        cpu_end = worker_cpu_seconds(worker.pid)
    finally:
        stop_worker(worker)
    with tenant_scope(*tenant_ids):
        snapshots = ReadinessScore.objects.filter(job_run_id__isnull=False).count()
    print(
        f"readiness fleet scan: {parent.children_succeeded} tenants × {args.systems} AI systems "
        f"in {readiness:.2f} s ({args.pool} worker, concurrency {args.concurrency}); "
        f"{snapshots} snapshots from scans in the bench database"
    )
    print(conditions("after"), flush=True)
    if cpu_start is not None and cpu_end is not None:
        # Per tenant, the worker's own CPU (the database's is not counted).
        per_tenant = [
            1000 * (b - a) / len(tenant_ids)
            for a, b in ((cpu_start, cpu_middle), (cpu_middle, cpu_end))
        ]
        print(
            f"worker CPU per tenant: compliance {per_tenant[0]:.1f} ms, "
            f"readiness {per_tenant[1]:.1f} ms"
        )
    print(f"compliance_fleet_seconds={compliance:.2f}")
    rate = len(tenant_ids) / readiness
    print(f"readiness_fleet_seconds={readiness:.2f} tenants_per_second={rate:.1f}")
    print(f"ratio={readiness / compliance:.2f}")


if __name__ == "__main__":
    main()
