"""Benchmark one month's service report: the HTML document, and the PDF printed from it.

One tenant with 8 GPU nodes and 10 days of 5-minute telemetry (GPU utilisation and cost per
node, ingested and rolled up as in production: ``8 × 2880 × 2`` samples) in the last ten days
of last month, and 200 incidents over that month (a fifth SEV1/SEV2 with postmortems). In one
process:

(a) baseline: the HTML report, figures read through every context's selectors and the document
    drawn with its charts (``report_figures`` + ``render_html``);
(b) the PDF of that HTML (``html_to_pdf``, WeasyPrint), the step the goal is about (< 5 s).

Each part runs ``--rounds`` times; the median counts. The last line is
``reports: html=<s> pdf=<s> ratio=<pdf/html> pages=<n>``.

    .venv/bin/python bench/reports.py                      # SQLite in a temporary folder
    DATABASE_URL=postgres://groundwork@127.0.0.1:5432/groundwork .venv/bin/python bench/reports.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import throwaway_database  # noqa: E402

NODES = 8
DAYS = 10
INCIDENTS = 200


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def build_tenant():
    from django.utils import timezone

    from operations.incidents import services as incidents
    from operations.inventory.models import CloudAccount, ComputeKind
    from operations.inventory.services import compute_create
    from operations.reports.periods import month_period
    from operations.telemetry.services import telemetry_ingest_batch, telemetry_rollup_pending
    from tenants.scoping import tenant_scope
    from tenants.services import tenant_create

    tenant = tenant_create(name="Bench Analytics", slug="bench")
    period = month_period(timezone.now().date()).previous()
    start, end = period.bounds(dt.UTC)
    rng = random.Random(7)
    with tenant_scope(tenant.id):
        account = CloudAccount.objects.create(
            tenant=tenant, provider="aws", account_id="bench", monthly_budget=60000, currency="EUR"
        )
        nodes = [
            compute_create(
                tenant=tenant,
                hostname=f"gpu-node-{n}",
                kind=ComputeKind.GPU_NODE,
                gpu_count=8,
                gpu_memory_gb=80,
                hourly_cost="24.0000",
                cloud_account=account,
            )
            for n in range(NODES)
        ]
        first = end - dt.timedelta(days=DAYS)
        samples = []
        for node in nodes:
            for step in range(DAYS * 288):
                ts = (first + dt.timedelta(minutes=5 * step)).isoformat()
                resource = f"compute:{node.hostname}"
                utilisation = 40 + 30 * rng.random()
                samples.append(
                    {
                        "resource": resource,
                        "metric": "gpu_utilization",
                        "ts": ts,
                        "value": utilisation,
                    }
                )
                samples.append(
                    {"resource": resource, "metric": "cost_per_hour", "ts": ts, "value": 24.0}
                )
        for offset in range(0, len(samples), 5000):
            telemetry_ingest_batch(tenant=tenant, samples=samples[offset : offset + 5000])
        telemetry_rollup_pending(tenant=tenant)
        span = (end - start).total_seconds()
        for n in range(INCIDENTS):
            at = start + dt.timedelta(seconds=span * n / INCIDENTS)
            severity = ("SEV1", "SEV2", "SEV3", "SEV3", "SEV4")[n % 5]
            incident = incidents.incident_create(
                tenant=tenant,
                at=at,
                severity=severity,
                category="performance",
                title=f"Incident {n}: inference latency above target",
            )
            incident = incidents.incident_acknowledge(
                tenant=tenant, incident=incident, at=at + dt.timedelta(minutes=5 + n % 40)
            )
            incident = incidents.incident_resolve(
                tenant=tenant, incident=incident, at=at + dt.timedelta(minutes=60 + n % 300)
            )
            if severity in ("SEV1", "SEV2"):
                incidents.postmortem_save(
                    tenant=tenant,
                    incident=incident,
                    summary=f"Node {n % NODES} lost a GPU; traffic moved to its peers.",
                )
    return tenant, period, len(samples)


def main() -> None:
    args = parse_args()
    with throwaway_database("reports_bench"):
        from django.utils import timezone
        from pypdf import PdfReader

        from operations.reports.figures import report_figures
        from operations.reports.pdf import html_to_pdf, pdf_unavailable_reason
        from operations.reports.rendering import render_html
        from operations.reports.services import _Draft
        from tenants.scoping import tenant_scope

        if pdf_unavailable_reason():
            sys.exit(pdf_unavailable_reason())
        tenant, period, samples = build_tenant()
        document = _Draft(kind="monthly", title="Bench", version=1, status="published")
        html_times, pdf_times = [], []
        for _ in range(args.rounds):
            began = time.perf_counter()
            with tenant_scope(tenant.id):
                figures = report_figures(tenant=tenant, period=period, now=timezone.now())
            html = render_html(report=document, figures=figures)
            html_times.append(time.perf_counter() - began)
            began = time.perf_counter()
            pdf = html_to_pdf(html)
            pdf_times.append(time.perf_counter() - began)
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
        a, b = statistics.median(html_times), statistics.median(pdf_times)
        print(
            f"{samples} samples, {figures['sla']['overall']['incidents']} incidents in "
            f"{period.label}; HTML {len(html) // 1024} KiB, PDF {len(pdf) // 1024} KiB"
        )
        print(f"reports: html={a:.3f} pdf={b:.3f} ratio={b / a:.2f} pages={pages}")


if __name__ == "__main__":
    main()
