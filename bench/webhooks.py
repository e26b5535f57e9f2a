"""Benchmark webhook publishing: events per second from the outbox to a local receiver, against
posting the same payloads directly with the same HTTP client, in the same run.

One tenant with one signed webhook endpoint pointing at a local ``http.server`` receiver (in a
process of its own, so it does not share this one's GIL; keep-alive, one thread per
connection). Each round writes ``--events`` outbox events (not timed), then:

(a) direct: POST each round's bodies (the envelopes the publisher would build) with one
    ``requests.Session``, one after another;
(b) publisher: ``outbox_publish_tenant`` + ``deliveries_send_due`` (what the
    ``events.publish_tenant`` task runs) until every event is delivered, with the same kind of
    session (``delivery_session()``, used by (a) too): claim, sign (Standard Webhooks), post,
    record each outcome.

The median round counts; ``ratio=b/a`` in events per second (higher is better; goal 0.5).

    .venv/bin/python bench/webhooks.py                    # SQLite, a temporary file
    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python bench/webhooks.py

On PostgreSQL it works in a throwaway database (``<name>_webhooks_bench``, created, migrated
and dropped); always in a temporary ``GROUNDWORK_VAR_DIR``. The last line is
``webhooks: a=<direct events/s> b=<published events/s> ratio=<b/a> events=<n>``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def serve(port, count) -> None:
    """The receiver process: answer every POST 200, count them."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16

        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with count.get_lock():
                count.value += 1
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


class Receiver:
    def __init__(self):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.port, self.count = context.Value("i", 0), context.Value("i", 0)
        self.process = context.Process(target=serve, args=(self.port, self.count), daemon=True)
        self.process.start()
        while not self.port.value:
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port.value}/hook"

    @property
    def received(self) -> int:
        return self.count.value

    def close(self) -> None:
        self.process.terminate()
        self.process.join()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def run(args) -> tuple[float, float]:
    from django.conf import settings
    from django.db import transaction

    from operations.events import delivery as publisher
    from operations.events.conf import events_settings
    from operations.events.models import Delivery, DeliveryStatus, OutboxEvent
    from operations.events.services import endpoint_create, event_record
    from tenants.scoping import tenant_scope
    from tenants.services import tenant_create

    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    events_settings.cache_clear()
    receiver = Receiver()
    tenant = tenant_create(name="Bench Bank", slug="bench-bank", industry="Finance", region="eu")
    with tenant_scope(tenant.id), transaction.atomic():
        endpoint_create(tenant=tenant, url=receiver.url)

    def write_events() -> list[OutboxEvent]:
        with tenant_scope(tenant.id), transaction.atomic():
            return [
                event_record(
                    tenant=tenant,
                    topic="incident.opened",
                    payload={
                        "id": n,
                        "reference": f"BENCH-{n}",
                        "title": f"Bench {n}",
                        "severity": "SEV2",
                        "status": "triggered",
                    },
                )
                for n in range(args.events)
            ]

    direct_rates, published_rates = [], []
    try:
        for _round in range(args.rounds + 1):  # the first round warms up
            events = write_events()
            bodies = [
                json.dumps(publisher.envelope(event, tenant.slug), separators=(",", ":"))
                for event in events
            ]
            with publisher.delivery_session() as session:
                began = time.perf_counter()
                for n, body in enumerate(bodies):
                    response = session.post(
                        receiver.url,
                        data=body.encode(),
                        headers={"content-type": "application/json", "webhook-id": f"d{n}"},
                        timeout=(3, 10),
                    )
                    assert response.status_code == 200
                direct = time.perf_counter() - began
            received_before = receiver.received
            with publisher.delivery_session() as session:
                began = time.perf_counter()
                while publisher.outbox_publish_tenant(tenant_id=tenant.id):
                    while publisher.deliveries_send_due(tenant_id=tenant.id, session=session)[
                        "sent"
                    ]:
                        pass
                published = time.perf_counter() - began
            assert receiver.received - received_before == args.events
            if _round:
                direct_rates.append(args.events / direct)
                published_rates.append(args.events / published)
            print(
                f"round {_round}: direct {args.events / direct:7.0f}/s  "
                f"published {args.events / published:7.0f}/s"
                + ("  (warm-up)" if not _round else "")
            )
        with tenant_scope(tenant.id):
            pending = Delivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).count()
        assert pending == 0, pending
    finally:
        receiver.close()
    return statistics.median(direct_rates), statistics.median(published_rates)


def main() -> None:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    var_dir = tempfile.mkdtemp(prefix="webhooks-bench-")
    os.environ["GROUNDWORK_VAR_DIR"] = var_dir
    name = admin_url = None
    try:
        if url.startswith("postgres"):
            parts = urlsplit(url)
            name = f"{parts.path.lstrip('/') or 'groundwork'}_webhooks_bench"
            admin_url = with_database(url, "postgres")
            recreate_database(admin_url, name)
            setup_django(with_database(url, name))
        else:
            os.environ.pop("DATABASE_URL", None)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")
            os.environ.setdefault("LOG_LEVEL", "WARNING")
            import django

            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
        from django.db import connection

        direct, published = run(args)
        print(
            f"webhooks: a={direct:.0f}/s b={published:.0f}/s ratio={published / direct:.2f} "
            f"events={args.events} db={connection.vendor}"
        )
    finally:
        if name:
            from django.db import connections

            connections.close_all()
            recreate_database(admin_url, name, drop_only=True)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
