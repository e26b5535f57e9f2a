"""Many clients against the web tier as the Procfile runs it: requests/s, p50, p95, errors.

Starts gunicorn with the Procfile's command line (``--workers`` as there unless given) on a
throwaway database with the demo data (``seed_demo``), issues a ``read ingest`` token bound to
``acme`` for each of ``--clients`` client threads, each on its own keep-alive session, and
runs them for ``--seconds``:

(a) baseline: every client asks ``/healthz`` (a Django view that reads the database and the
    cache): what the stack answers when a request does next to nothing;
(b) mixed: the common reads and small writes, at random in these shares: the compute list
    (``page_size=100``) 35 %, one compute node 20 %, a day of hourly telemetry series 20 %,
    the incident list 10 %, a telemetry ingest of 10 samples 15 %.

Prints, per phase, requests/s, p50 and p95 latency and errors (any status other than the
expected one, or no answer); the last line is
``load: clients=<n> rps=<mixed> p50=<ms> p95=<ms> errors=<n> ratio=<mixed rps / baseline rps>``.

    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork \\
        REDIS_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/load.py --clients 50 --seconds 30

The client threads share this machine's cores with gunicorn (on 2 cores they take a real
share): the figures are for this machine as a whole, not the server alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import recreate_database, with_database  # noqa: E402

TENANT = "acme"
# One ``read ingest`` token a client, bound to the tenant, printed one a line.
ISSUE_TOKENS = f"""
from tenants import services
from tenants.models import Tenant, User
user, tenant = User.objects.get(username="{TENANT}-admin"), Tenant.objects.get(slug="{TENANT}")
for n in range(%(n)d):
    print(services.token_issue(
        user=user, name=f"load {{n}}", tenant=tenant, scopes=["read", "ingest"])[1])
"""


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (Procfile: 2)")
    parser.add_argument("--port", type=int, default=8077)
    return parser.parse_args()


def manage(env, *args) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_gunicorn(env, port: int, workers: int) -> subprocess.Popen:
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
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


class Phase:
    def __init__(self):
        self.latencies: list[float] = []
        self.errors = 0
        self.error_kinds: Counter[str] = Counter()
        self.lock = threading.Lock()

    def record(self, seconds: float, ok: bool, what: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if not ok:
                self.errors += 1
                self.error_kinds[what] += 1


def run_phase(clients: int, seconds: float, pick, tokens: list[str]) -> tuple[Phase, float]:
    phase = Phase()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        session = requests.Session()
        # A token a client, as integrations have: each its own rate limit.
        session.headers["Authorization"] = f"Bearer {tokens[seed % len(tokens)]}"
        chooser = random.Random(seed)
        while time.monotonic() < stop:
            method, url, body, expected = pick(chooser)
            started = time.perf_counter()
            try:
                response = session.request(method, url, json=body, timeout=30)
                ok, what = response.status_code == expected, f"{method} {response.status_code}"
            except requests.RequestException as error:
                ok, what = False, f"{method} {type(error).__name__}"
            phase.record(time.perf_counter() - started, ok, what)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return phase, time.perf_counter() - started


def summary(name: str, phase: Phase, elapsed: float) -> tuple[float, float, float]:
    latencies = sorted(phase.latencies)
    rps = len(latencies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
    errors = ", ".join(f"{what} ×{n}" for what, n in phase.error_kinds.most_common())
    print(
        f"{name}: {len(latencies)} requests in {elapsed:.1f} s, {rps:.1f} req/s, "
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, errors {phase.errors}"
        + (f" ({errors})" if errors else "")
    )
    return rps, p50, p95


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (and REDIS_URL as in production)")
    name = f"{urlsplit(url).path.lstrip('/') or 'groundwork'}_load_bench"
    admin_url = with_database(url, "postgres")
    var_dir = tempfile.mkdtemp(prefix="load-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": with_database(url, name),
        "GROUNDWORK_VAR_DIR": var_dir,
        "DJANGO_HTTPS": "false",
        "LOG_LEVEL": "WARNING",
        "CACHE_KEY_PREFIX": f"load-bench-{os.getpid()}",
    }
    env.pop("DATABASE_OWNER_URL", None)
    recreate_database(admin_url, name)
    server = None
    try:
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
        issued = manage(env, "shell", "-c", ISSUE_TOKENS % {"n": args.clients})
        tokens = [word for word in issued.split() if word.startswith("gw_")]
        if len(tokens) != args.clients:
            raise SystemExit(f"expected {args.clients} tokens, got:\n{issued}")
        server = start_gunicorn(env, args.port, args.workers)
        measure(args, tokens)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        recreate_database(admin_url, name, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)


def measure(args, tokens: list[str]) -> None:
    base = f"http://127.0.0.1:{args.port}"
    api = f"{base}/api/v1/tenants/{TENANT}"
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    gpu_nodes = f"{api}/compute/?kind=gpu_node&page_size=500"
    listed = requests.get(gpu_nodes, headers=headers, timeout=30)
    if listed.status_code != 200:
        raise SystemExit(f"listing the GPU nodes: {listed.status_code} {listed.text[:500]}")
    nodes = listed.json()["results"]
    if not nodes:
        raise SystemExit("the demo estate has no GPU nodes")
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    day = f"from={(now - dt.timedelta(days=1)).isoformat()}&to={now.isoformat()}".replace(
        "+00:00", "Z"
    )

    def healthz(_chooser):
        return "GET", f"{base}/healthz", None, 200

    def mixed(chooser):
        node = chooser.choice(nodes)
        draw = chooser.random()
        if draw < 0.35:
            return "GET", f"{api}/compute/?page_size=100", None, 200
        if draw < 0.55:
            return "GET", f"{api}/compute/{node['id']}/", None, 200
        if draw < 0.75:
            resource = f"compute:{node['hostname']}"
            series = f"{api}/telemetry/series?resource={resource}&metric=gpu_utilization"
            return "GET", f"{series}&{day}&step=1h", None, 200
        if draw < 0.85:
            return "GET", f"{api}/incidents/", None, 200
        at = dt.datetime.now(dt.UTC)
        samples = [
            {
                "resource": f"compute:{node['hostname']}",
                "metric": "gpu_utilization",
                "ts": (at - dt.timedelta(milliseconds=n)).isoformat().replace("+00:00", "Z"),
                "value": round(chooser.uniform(0, 100), 2),
            }
            for n in range(10)
        ]
        return "POST", f"{api}/telemetry/samples", {"samples": samples}, 200

    print(f"{os.cpu_count()} cores, gunicorn --workers {args.workers}, {args.clients} clients")
    base_rps, _, _ = summary(
        "baseline /healthz", *run_phase(args.clients, args.seconds, healthz, tokens)
    )
    phase, elapsed = run_phase(args.clients, args.seconds, mixed, tokens)
    rps, p50, p95 = summary("mixed", phase, elapsed)
    print(
        f"load: clients={args.clients} rps={rps:.1f} p50={p50:.0f} p95={p95:.0f} "
        f"errors={phase.errors} ratio={rps / base_rps:.3f}"
    )


if __name__ == "__main__":
    main()
