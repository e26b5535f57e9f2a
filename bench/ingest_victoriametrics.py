"""dcgm-exporter ingest through Groundwork into VictoriaMetrics against posting the same scrapes
straight to VictoriaMetrics, over real HTTP, in one run (issue 17: Groundwork only
authenticates, labels and forwards).

One ``/usr/bin/victoria-metrics`` (Debian's package) on a free port with a temporary data
directory, and Groundwork's gunicorn as the Procfile runs it (``--workers`` 2) with
``TELEMETRY_BACKEND=victoriametrics`` pointing at it, on a throwaway database holding a tenant,
an ingest token and the hosts' inventory. The requests are bench/ingest_peer.py's: each the
dcgm-exporter scrapes of ``--hosts`` (50) × ``--gpus`` (8) × the 8 DCGM families, with
dcgm-exporter's labels and a millisecond timestamp per line. In each of ``--rounds`` rounds,
alternated so both see the same machine load, ``--clients`` (2) concurrent clients post

(a) straight to VictoriaMetrics: ``/api/v1/import/prometheus`` (``--route prometheus``, the
    default) or ``/api/v1/write`` (``--route remote-write``: the same samples as snappy
    protobuf WriteRequests, as vmagent sends them), with ``extra_label`` tenant and instance
    labels as Groundwork adds them;
(b) through Groundwork: ``POST /api/v1/tenants/<slug>/telemetry/prometheus`` or
    ``…/telemetry/remote-write`` with the bearer token (authenticated, size- and media-type-
    checked, forwarded under the tenant's label).

Each round has its own timestamps (fresh samples for both). Series per second = series posted
/ wall time; afterwards VictoriaMetrics is asked how many samples each side stored, so neither
wins by keeping less. CPU seconds of Groundwork's workers and of VictoriaMetrics per round are
read from /proc (the machine is shared: CPU per series is steadier than wall time).
``--breakdown`` adds, per round, the workers' user and system CPU and minor page faults a
request, and VictoriaMetrics' own CPU a series while it took Groundwork's forwards.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
        .venv/bin/python bench/ingest_victoriametrics.py [--route remote-write] [--breakdown]

Without ``REDIS_URL`` the workers count the ingest throttle in Django's file cache (a file
written a request, ≈ 0.5 ms more than Redis); set it to measure as production runs.

The last line is ``ingest_victoriametrics: gw=<series/s> vm=<series/s> ratio=<gw/vm>``
(medians of the rounds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest_peer import (  # noqa: E402
    FAMILIES,
    TENANT_SLUG,
    free_port,
    make_estate,
    post_all,
    scrape_body,
    start_gunicorn,
    start_victoria_metrics,
    stop,
)
from bench.support import throwaway_database  # noqa: E402

GW_INSTANCE = "bench-gw"
VM_INSTANCE = "bench-vm"
ROUTES = {
    # route: (VictoriaMetrics path, Groundwork path, headers, success codes of gw)
    "prometheus": (
        "/api/v1/import/prometheus",
        "telemetry/prometheus",
        {"Content-Type": "text/plain"},
        (202,),
    ),
    "remote-write": (
        "/api/v1/write",
        "telemetry/remote-write",
        {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
        (204,),
    ),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", choices=sorted(ROUTES), default="prometheus")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--requests", type=int, default=40, help="timed requests a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (Procfile: 2)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="Groundwork's CPU a request per round: user, system, page faults",
    )
    return parser.parse_args()


def remote_write_body(text: bytes) -> bytes:
    """The samples of a text scrape as one snappy-compressed remote write 1.0 request."""
    import cramjam

    from operations.telemetry.exposition import iter_samples
    from operations.telemetry.prompb import WriteRequest

    request = WriteRequest()
    for name, labels, value, timestamp in iter_samples(text.decode()):
        series = request.timeseries.add()
        for key, label in sorted({**labels, "__name__": name}.items()):
            series.labels.add(name=key, value=label)
        series.samples.add(value=value, timestamp=round(timestamp * 1000))
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def process_times(pid: int, *, children: bool) -> tuple[float, float, int]:
    """User and system CPU seconds and minor page faults of ``pid`` (and of its live children:
    gunicorn's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    if children:
        path = Path(f"/proc/{pid}/task/{pid}/children")
        pids += [int(child) for child in path.read_text().split()]
    user = system = faults = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        faults += int(fields[7])
        user += int(fields[11])
        system += int(fields[12])
    return user / ticks, system / ticks, faults


def cpu_seconds(pid: int, *, children: bool) -> float:
    """User + system CPU of ``pid`` (and of its live children: gunicorn's workers)."""
    user, system, _faults = process_times(pid, children=children)
    return user + system


def stored_samples(base: str, instance: str) -> int:
    requests.get(f"{base}/internal/force_flush", timeout=30)
    response = requests.post(
        f"{base}/api/v1/query",
        data={
            "query": f'sum(count_over_time({{groundwork="{instance}"}}[1d]))',
            "time": str(dt.datetime.now(dt.UTC).timestamp() + 60),
        },
        timeout=60,
    )
    result = response.json()["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def main() -> None:
    args = parse_args()
    vm_dir = tempfile.mkdtemp(prefix="ingest-vm-bench-")
    vm_port = free_port()
    vm = start_victoria_metrics(vm_dir, vm_port)
    gunicorn = None
    try:
        vm_base = f"http://127.0.0.1:{vm_port}"
        os.environ["TELEMETRY_BACKEND"] = "victoriametrics"
        os.environ["TELEMETRY_URL"] = vm_base
        with throwaway_database("ingest_vm_bench"):
            tenant, token = make_estate(args.hosts, args.gpus)
            env = {
                **os.environ,
                "DJANGO_HTTPS": "false",
                "LOG_LEVEL": "WARNING",
                "TELEMETRY_INSTANCE": GW_INSTANCE,
                # The bench posts faster than an agent fleet's token would: not throttled here.
                "API_INGEST_THROTTLE_RATE": "1000000/minute",
            }
            env.pop("DATABASE_OWNER_URL", None)
            gw_port = free_port()
            gunicorn = start_gunicorn(env, gw_port, args.workers)
            run(args, tenant, token, vm, vm_base, gunicorn, f"http://127.0.0.1:{gw_port}")
    finally:
        stop(gunicorn)
        stop(vm)
        import shutil

        shutil.rmtree(vm_dir, ignore_errors=True)


def run(args, tenant, token: str, vm, vm_base: str, gunicorn, gw_base: str) -> None:
    vm_path, gw_path, headers, gw_ok = ROUTES[args.route]
    per_request = args.hosts * args.gpus * len(FAMILIES)
    total = args.warmup + 2 * args.rounds * args.requests
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    bodies = [
        scrape_body(args.hosts, args.gpus, end - dt.timedelta(seconds=10 * (total - n)), n)
        for n in range(total)
    ]
    if args.route == "remote-write":
        bodies = [remote_write_body(body) for body in bodies]
    size = sum(map(len, bodies)) / len(bodies) / 1024
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; route {args.route}; "
        f"requests of {args.hosts} hosts × {args.gpus} GPUs × {len(FAMILIES)} families = "
        f"{per_request} series ({size:.0f} KiB), {args.requests} timed a round and side, "
        f"{args.clients} clients, {args.workers} gunicorn workers"
    )
    vm_url = (
        f"{vm_base}{vm_path}?extra_label=tenant={tenant.id}&extra_label=kind=scrape"
        f"&extra_label=groundwork={VM_INSTANCE}"
    )
    gw_url = f"{gw_base}/api/v1/tenants/{TENANT_SLUG}/{gw_path}"
    gw_headers = {**headers, "Authorization": f"Bearer {token}"}
    warmup, timed = bodies[: args.warmup], bodies[args.warmup :]
    post_all(vm_url, warmup, args.clients, headers, (204,))
    post_all(gw_url, warmup, args.clients, gw_headers, gw_ok)
    vm_rates, gw_rates, vm_cpu, gw_cpu = [], [], [], []
    for number in range(args.rounds):
        offset = 2 * number * args.requests
        vm_bodies = timed[offset : offset + args.requests]
        gw_bodies = timed[offset + args.requests : offset + 2 * args.requests]
        series = per_request * args.requests
        cpu = cpu_seconds(vm.pid, children=False)
        seconds = post_all(vm_url, vm_bodies, args.clients, headers, (204,))
        vm_cpu.append(cpu_seconds(vm.pid, children=False) - cpu)
        vm_rates.append(series / seconds)
        before = process_times(gunicorn.pid, children=True), cpu_seconds(vm.pid, children=False)
        seconds = post_all(gw_url, gw_bodies, args.clients, gw_headers, gw_ok)
        after = process_times(gunicorn.pid, children=True), cpu_seconds(vm.pid, children=False)
        user, system, faults = (b - a for a, b in zip(before[0], after[0], strict=True))
        gw_cpu.append(user + system)
        gw_rates.append(series / seconds)
        print(
            f"round {number + 1}: vm={vm_rates[-1]:,.0f} gw={gw_rates[-1]:,.0f} series/s "
            f"ratio={gw_rates[-1] / vm_rates[-1]:.3f}; CPU µs/series: VictoriaMetrics "
            f"{vm_cpu[-1] * 1e6 / series:.2f}, Groundwork's workers {gw_cpu[-1] * 1e6 / series:.2f}"
        )
        if args.breakdown:
            print(
                f"  Groundwork's workers a request: user {user * 1e3 / args.requests:.2f} ms, "
                f"system {system * 1e3 / args.requests:.2f} ms, "
                f"{faults / args.requests:.0f} minor page faults; VictoriaMetrics behind them "
                f"{(after[1] - before[1]) * 1e6 / series:.2f} µs/series"
            )
    expected = per_request * (args.rounds * args.requests + args.warmup)
    kept = stored_samples(vm_base, VM_INSTANCE), stored_samples(vm_base, GW_INSTANCE)
    print(
        f"samples stored: straight {kept[0]}, through Groundwork {kept[1]} (sent {expected} each)"
    )
    if kept != (expected, expected):
        raise SystemExit("the two sides did not store the same samples")
    vm_rate, gw_rate = statistics.median(vm_rates), statistics.median(gw_rates)
    print(f"machine load after: {os.getloadavg()[0]:.2f}")
    print(
        f"ingest_victoriametrics: gw={gw_rate:.0f} vm={vm_rate:.0f} ratio={gw_rate / vm_rate:.3f}"
    )


if __name__ == "__main__":
    main()
