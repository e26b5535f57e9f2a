"""Benchmark telemetry ingest through Groundwork into VictoriaMetrics against posting the same
samples straight to VictoriaMetrics.

In one run, the same N samples (``--samples``, default 100,000: 50 GPU hosts × 8 dcgm metrics
every 10 s; as bench/ingest.py) are written

(a) straight to VictoriaMetrics' ``/api/v1/import``, as the JSON lines Groundwork itself sends
    (same series labels, one line per series and hour), one request per ``--batch`` samples;
(b) through the real endpoint, ``POST /api/v1/tenants/{slug}/telemetry/samples`` with
    ``TELEMETRY_BACKEND=victoriametrics``, in batches of ``--batch``, with Django's test client:
    middleware, bearer token, tenant scope, validation (resources by hostname), labelling and
    forwarding, and the hour markers for the rollup in PostgreSQL.

Inputs are prepared before the clock starts in both, and one batch of each warms up first. Each
part runs ``--rounds`` times, each
round under a ``groundwork`` label value of its own (fresh series, as the first write of a
scrape); the median counts. It starts Debian's ``victoria-metrics`` itself on a free port with a
temporary data directory, and works in a throwaway database (``<name>_ingest_vm_bench``), so
nothing is left behind:

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
        .venv/bin/python bench/ingest_victoriametrics.py

The last line is ``ingest_victoriametrics: a=<samples/s> b=<samples/s> ratio=<b/a>``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import GPU_METRICS, make_estate, make_samples  # noqa: E402
from bench.support import throwaway_database  # noqa: E402

BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def start_victoria_metrics(data_dir: str) -> tuple[subprocess.Popen, str]:
    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments made here
        [
            BINARY,
            f"-storageDataPath={data_dir}",
            "-retentionPeriod=100y",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-dedup.minScrapeInterval=1ms",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("victoria-metrics did not come up")


def direct_bodies(rows, batch: int) -> list[bytes]:
    """(a)'s request bodies: Groundwork's own import lines for each batch of rows."""
    from operations.telemetry.backends.victoriametrics import import_body
    from operations.telemetry.storage import group_blocks

    return [
        import_body(group_blocks(rows[start : start + batch]))[0]
        for start in range(0, len(rows), batch)
    ]


def part_a(url: str, bodies: list[bytes], total: int) -> float:
    import requests

    session = requests.Session()
    started = time.perf_counter()
    for body in bodies:
        response = session.post(
            f"{url}/api/v1/import", data=body, headers={"Content-Type": "application/stream+json"}
        )
        response.raise_for_status()
    return total / (time.perf_counter() - started)


def part_b(tenant, token: str, bodies: list[bytes], sizes: list[int]) -> float:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    path = f"/api/v1/tenants/{tenant.slug}/telemetry/samples"
    started = time.perf_counter()
    for body, size in zip(bodies, sizes, strict=True):
        response = client.post(path, data=body, content_type="application/json", secure=True)
        if response.status_code != 200 or response.json()["inserted"] != size:
            raise SystemExit(f"ingest failed: {response.status_code} {response.content[:500]!r}")
    return sum(sizes) / (time.perf_counter() - started)


def count_stored(url: str, instance: str) -> int:
    import requests

    requests.get(f"{url}/internal/force_flush", timeout=30)
    response = requests.post(
        f"{url}/api/v1/query",
        data={
            "query": f'sum(count_over_time({{groundwork="{instance}"}}[10y]))',
            "time": str(time.time() + 60),
        },
        timeout=60,
    )
    result = response.json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def main() -> None:
    args = parse_args()
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("victoria-metrics is not installed (apt-get install victoria-metrics)")
    data_dir = tempfile.mkdtemp(prefix="vm-bench-")
    process, url = start_victoria_metrics(data_dir)
    os.environ["TELEMETRY_BACKEND"] = "victoriametrics"
    os.environ["TELEMETRY_URL"] = url
    try:
        with throwaway_database("ingest_vm_bench"):
            run(args, url)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def run(args, url: str) -> None:
    from django.conf import settings

    tenant, token, nodes = make_estate(args.hosts)
    rows, samples = make_samples(tenant.id, nodes, args.samples)
    bodies, sizes = [], []
    for start in range(0, len(samples), args.batch):
        chunk = samples[start : start + args.batch]
        bodies.append(json.dumps({"samples": chunk}).encode())
        sizes.append(len(chunk))
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {BINARY}")
    print(
        f"samples: {len(rows)} ({args.hosts} hosts × {len(GPU_METRICS)} metrics, 10 s apart), "
        f"batches of {args.batch}"
    )
    # Warm up both paths (imports, connections, caches) under labels of their own.
    settings.TELEMETRY_INSTANCE = "bench-warm-up"
    part_a(url, direct_bodies(rows[: args.batch], args.batch), min(len(rows), args.batch))
    part_b(tenant, token, bodies[:1], sizes[:1])
    a_runs, b_runs = [], []
    for round_number in range(1, args.rounds + 1):
        settings.TELEMETRY_INSTANCE = f"bench-a-{round_number}"
        a_bodies = direct_bodies(rows, args.batch)
        a_runs.append(part_a(url, a_bodies, len(rows)))
        settings.TELEMETRY_INSTANCE = f"bench-b-{round_number}"
        b_runs.append(part_b(tenant, token, bodies, sizes))
        stored = (
            count_stored(url, f"bench-a-{round_number}"),
            count_stored(url, f"bench-b-{round_number}"),
        )
        if stored != (len(rows), len(rows)):
            raise SystemExit(f"expected {len(rows)} samples stored by each part, found {stored}")
        print(f"round {round_number}: a={a_runs[-1]:,.0f} samples/s  b={b_runs[-1]:,.0f} samples/s")
    a, b = statistics.median(a_runs), statistics.median(b_runs)
    ratios = ", ".join(f"{b_run / a_run:.3f}" for a_run, b_run in zip(a_runs, b_runs, strict=True))
    print(f"ratio b/a per round: {ratios}")
    print(f"(a) straight to VictoriaMetrics /api/v1/import: {a:,.0f} samples/s")
    print(
        f"(b) POST telemetry/samples through Groundwork, {args.batch} a request: {b:,.0f} samples/s"
    )
    print(f"ingest_victoriametrics: a={a:.0f} b={b:.0f} ratio={b / a:.3f}")


if __name__ == "__main__":
    main()
