"""Demo inventory: a believable AI estate for one tenant, in the flavour of its industry.

``seed_inventory(tenant, profile="finance" | "health" | "logistics")`` builds an import document
and loads it with ``bulk.inventory_import`` inside ``tenant_scope(tenant.id)``, so every row is
validated and audited by the same services as the API. It is idempotent: rows are found by
natural key and only missing ones are created (what people changed in the demo stays changed).

Every tenant gets, with ``<slug>`` its slug (hostnames are the telemetry seed's keys):

==============================  =========================================================
``<slug>-gpu-hot``              GPU cluster that will be *saturated* (on-prem data centre)
``<slug>-gpu-hot-01`` … ``-04`` its nodes, 8 × H100 (or the profile's flagship) each
``<slug>-gpu-main``             GPU cluster in the colocation site
``<slug>-gpu-main-01`` … ``-03`` its nodes, 8 × A100; ``-03`` is in maintenance
``<slug>-gpu-idle-01``          standalone cloud GPU node (4 × L40S) that will be *idle*
``<slug>-edge-01``              edge GPU node (1 × L4)
``<slug>-cpu-01``, ``-cpu-02``  CPU nodes for classic ML
``<slug>-llm-endpoint``         managed LLM endpoint in a cloud region
==============================  =========================================================

GPU UUIDs are ``GPU-<uuid5(tenant slug, hostname, index)>``: stable across runs and unique.
Each GPU node's GPUs are in the inventory too (``GpuDevice``, index = place in ``gpu_uuids``),
as a first dcgm-exporter scrape would learn them: the telemetry seed writes their series.
The AI register covers every stage and risk tier: a prohibited-practice proposal, high-risk
systems in production (one with monitoring and a runbook, one without), limited-risk chatbots,
minimal-risk forecasting, an unclassified proposal, and a retired system that still holds a
deployment (capacity that optimisation should find).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from operations.inventory.bulk import inventory_import
from operations.inventory.models import ComputeKind, ComputeResource, GpuDevice
from operations.inventory.services import gpu_device_create
from tenants.scoping import tenant_scope

_UUID_NAMESPACE = uuid.UUID("6f1c2b1e-6a0b-4d0c-9a51-0c9e2f7d4a10")
_TODAY = datetime.date.today()


@dataclass(frozen=True)
class Profile:
    sites: list[dict]
    on_prem: str
    colo: str
    cloud: str
    cloud_2: str
    edge: str
    accounts: list[dict]
    flagship_gpu: tuple[str, int, str]  # model, memory GB, hourly cost per node
    datasets: list[dict]
    ai_systems: list[dict]
    # name → (ai system, compute suffix, environment, monitoring and runbook?)
    deployments: list[tuple[str, str, str, str, bool]]


def _site(code, name, kind, country, region="", provider=""):
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "country": country,
        "region": region,
        "provider": provider,
    }


def _dataset(name, classification, personal, country, owner, **extra):
    return {
        "name": name,
        "classification": classification,
        "personal_data": personal,
        "residency_country": country,
        "owner": owner,
        **extra,
    }


def _system(name, stage, tier, provenance, purpose, datasets=(), **extra):
    row = {
        "name": name,
        "stage": stage,
        "risk_tier": tier,
        "provenance": provenance,
        "purpose": purpose,
        "datasets": [{"dataset": dataset, "usage": usage} for dataset, usage in datasets],
        **extra,
    }
    if stage != "proposed":
        # Past the proposal, a system has named owners (a proposal may not have them yet).
        row.setdefault("business_owner", "Chief Data Officer")
        row.setdefault("technical_owner", "ML platform team")
    if tier != "unclassified":
        row.setdefault("risk_classified_at", "2025-03-14")
        # Reviewed recently, so the compliance scan's 12-month review check passes by default.
        row.setdefault("risk_reviewed_at", (_TODAY - datetime.timedelta(days=75)).isoformat())
    return row


FINANCE = Profile(
    sites=[
        _site("lon-dc1", "London DC1", "on_prem_dc", "GB", "London"),
        _site("ld5-colo", "Equinix LD5", "colocation", "GB", "Slough", "Equinix"),
        _site("aws-eu-west-2", "AWS London", "cloud_region", "GB", "eu-west-2", "AWS"),
        _site("azure-westeurope", "Azure West Europe", "cloud_region", "NL", "westeurope", "Azure"),
        _site("branch-man", "Manchester branch", "edge", "GB", "Manchester"),
    ],
    on_prem="lon-dc1",
    colo="ld5-colo",
    cloud="aws-eu-west-2",
    cloud_2="azure-westeurope",
    edge="branch-man",
    accounts=[
        {
            "provider": "aws",
            "account_id": "{n}123456789",
            "name": "Production",
            "monthly_budget": "85000.00",
            "currency": "GBP",
        },
        {
            "provider": "azure",
            "account_id": "sub-{slug}-ai",
            "name": "AI platform",
            "monthly_budget": "40000.00",
            "currency": "EUR",
        },
    ],
    flagship_gpu=("NVIDIA H100 80GB HBM3", 80, "31.4400"),
    datasets=[
        _dataset(
            "Loan applications 2019-2025",
            "restricted",
            True,
            "GB",
            "Head of Credit Risk",
            retention_days=2555,
            provenance="Core banking export",
            quality_score=88,
            last_validated_at="2025-09-30T08:00:00Z",
        ),
        _dataset(
            "Card transactions",
            "restricted",
            True,
            "GB",
            "Payments data owner",
            retention_days=1825,
            provenance="Card processor feed",
            quality_score=93,
        ),
        _dataset(
            "Customer support transcripts",
            "confidential",
            True,
            "IE",
            "Service director",
            retention_days=730,
            provenance="Contact-centre platform",
            quality_score=71,
        ),
        _dataset(
            "Market data feed",
            "internal",
            False,
            "US",
            "Treasury",
            licence="Commercial data licence",
            provenance="Market data vendor",
        ),
        _dataset(
            "Public economic indicators",
            "public",
            False,
            "GB",
            "Economics team",
            licence="Open Government Licence v3.0",
            provenance="ONS",
            quality_score=97,
        ),
        _dataset(
            "Synthetic fraud scenarios",
            "internal",
            False,
            "",
            "Fraud analytics",
            provenance="Generated in-house",
        ),
    ],
    ai_systems=[
        _system(
            "Credit scoring",
            "production",
            "high",
            "in_house",
            "Scores consumer loan applications; a human underwriter decides.",
            [
                ("Loan applications 2019-2025", "training"),
                ("Public economic indicators", "training"),
            ],
            personal_data=True,
            human_oversight=True,
            human_overseer="Credit risk committee",
            business_owner="Head of Lending",
            technical_owner="Model risk engineering",
            model_name="credit-gbm",
            model_version="4.2.0",
            annex_iii_area="essential_services",
            technical_documentation_url="https://docs.example.com/ai/credit-scoring",
            fria_required=True,
            fria_completed_at="2025-04-02",
            eu_database_id="EUDB-HR-2025-00412",
        ),
        _system(
            "Fraud detection",
            "production",
            "high",
            "in_house",
            "Flags card transactions for review before settlement.",
            [("Card transactions", "training"), ("Synthetic fraud scenarios", "evaluation")],
            personal_data=True,
            human_oversight=True,
            human_overseer="Fraud operations",
            model_name="fraud-transformer",
            model_version="2.1.3",
        ),
        _system(
            "Customer support assistant",
            "production",
            "limited",
            "vendor",
            "Answers customer questions in the app; hands over to an agent on request.",
            [("Customer support transcripts", "inference")],
            vendor="Microsoft (Azure OpenAI)",
            model_name="gpt-4o",
            model_version="2024-08-06",
            user_facing=True,
            generative=True,
            personal_data=True,
            ai_disclosure=True,
            vendor_assessed_at=(_TODAY - datetime.timedelta(days=120)).isoformat(),
        ),
        _system(
            "Advisor copilot",
            "pilot",
            "limited",
            "open_weights",
            "Drafts answers for relationship managers from product documentation.",
            [("Customer support transcripts", "evaluation")],
            model_name="Llama 3.1 70B Instruct",
            model_version="3.1",
            generative=True,
        ),
        _system(
            "Liquidity forecasting",
            "production",
            "minimal",
            "in_house",
            "Forecasts intraday liquidity needs for treasury.",
            [("Market data feed", "training"), ("Public economic indicators", "training")],
            model_name="prophet-ensemble",
            model_version="1.8",
        ),
        _system(
            "Employee emotion recognition",
            "proposed",
            "prohibited",
            "vendor",
            "Proposed: infer branch staff emotions from cameras (EU AI Act Art. 5(1)(f)).",
            vendor="Unnamed start-up",
        ),
        _system(
            "AML alert triage",
            "proposed",
            "unclassified",
            "in_house",
            "Prioritise anti-money-laundering alerts for investigators.",
        ),
        _system(
            "Legacy chatbot",
            "retired",
            "limited",
            "vendor",
            "Rule-based website chatbot, replaced by the support assistant.",
            vendor="ChatCo",
            user_facing=True,
        ),
    ],
    deployments=[
        ("credit-scoring-prod", "Credit scoring", "gpu-hot-01", "production", True),
        ("fraud-detection-prod", "Fraud detection", "gpu-hot-02", "production", False),
        (
            "support-assistant-prod",
            "Customer support assistant",
            "llm-endpoint",
            "production",
            True,
        ),
        ("advisor-copilot-pilot", "Advisor copilot", "gpu-main-01", "staging", False),
        ("liquidity-forecast-prod", "Liquidity forecasting", "cpu-01", "production", True),
        ("legacy-chatbot-prod", "Legacy chatbot", "gpu-main-02", "production", False),
    ],
)

HEALTH = Profile(
    sites=[
        _site("dub-dc1", "Dublin hospital DC", "on_prem_dc", "IE", "Dublin"),
        _site("ams-colo", "Interxion AMS5", "colocation", "NL", "Amsterdam", "Digital Realty"),
        _site(
            "azure-northeurope", "Azure North Europe", "cloud_region", "IE", "northeurope", "Azure"
        ),
        _site("gcp-europe-west4", "GCP Netherlands", "cloud_region", "NL", "europe-west4", "GCP"),
        _site("clinic-cork", "Cork clinic", "edge", "IE", "Cork"),
    ],
    on_prem="dub-dc1",
    colo="ams-colo",
    cloud="azure-northeurope",
    cloud_2="gcp-europe-west4",
    edge="clinic-cork",
    accounts=[
        {
            "provider": "azure",
            "account_id": "sub-{slug}-clinical",
            "name": "Clinical AI",
            "monthly_budget": "60000.00",
            "currency": "EUR",
        },
        {
            "provider": "gcp",
            "account_id": "{slug}-research",
            "name": "Research",
            "monthly_budget": "15000.00",
            "currency": "EUR",
        },
    ],
    flagship_gpu=("NVIDIA H100 80GB HBM3", 80, "29.8000"),
    datasets=[
        _dataset(
            "Emergency department triage notes",
            "restricted",
            True,
            "IE",
            "Clinical director, ED",
            retention_days=2920,
            quality_score=76,
            provenance="EHR extract",
            last_validated_at="2025-08-12T10:00:00Z",
        ),
        _dataset(
            "Chest X-ray images",
            "restricted",
            True,
            "IE",
            "Head of Radiology",
            retention_days=3650,
            provenance="PACS",
            quality_score=89,
        ),
        _dataset(
            "Appointment history",
            "confidential",
            True,
            "IE",
            "Outpatients manager",
            retention_days=1095,
            provenance="Scheduling system",
        ),
        _dataset(
            "Clinical guidelines corpus",
            "public",
            False,
            "",
            "Library services",
            licence="CC BY 4.0",
            provenance="Published guidelines",
            quality_score=95,
        ),
        _dataset(
            "MIMIC-IV (de-identified)",
            "restricted",
            False,
            "US",
            "Research office",
            licence="PhysioNet Credentialed Health Data License 1.5.0",
            provenance="PhysioNet",
        ),
        _dataset(
            "Bed occupancy history",
            "internal",
            False,
            "IE",
            "Operations",
            retention_days=1825,
            quality_score=90,
        ),
    ],
    ai_systems=[
        _system(
            "ED triage assistant",
            "production",
            "high",
            "in_house",
            "Suggests a triage category to the triage nurse, who decides.",
            [
                ("Emergency department triage notes", "training"),
                ("MIMIC-IV (de-identified)", "evaluation"),
            ],
            personal_data=True,
            human_oversight=True,
            human_overseer="Triage nurse on duty",
            business_owner="Clinical director, ED",
            model_name="triage-bert",
            model_version="3.0.1",
        ),
        _system(
            "Chest X-ray second reader",
            "production",
            "high",
            "vendor",
            "Flags possible findings on chest X-rays for radiologist review.",
            [("Chest X-ray images", "evaluation")],
            vendor="RadVision",
            model_name="cxr-detect",
            model_version="5.4",
            personal_data=True,
            human_oversight=True,
            human_overseer="Consultant radiologist",
        ),
        _system(
            "Patient FAQ chatbot",
            "production",
            "limited",
            "vendor",
            "Answers visiting-hours and appointment questions on the website.",
            [("Clinical guidelines corpus", "inference")],
            vendor="Microsoft (Azure OpenAI)",
            model_name="gpt-4o-mini",
            user_facing=True,
            generative=True,
        ),
        _system(
            "Clinical note summariser",
            "pilot",
            "limited",
            "open_weights",
            "Drafts discharge summaries for clinicians to edit.",
            [("Emergency department triage notes", "evaluation")],
            model_name="Mistral 7B Instruct",
            model_version="0.3",
            generative=True,
            personal_data=True,
        ),
        _system(
            "Bed demand forecasting",
            "production",
            "minimal",
            "in_house",
            "Forecasts bed demand per ward for the next 14 days.",
            [("Bed occupancy history", "training"), ("Appointment history", "training")],
            model_name="xgboost-beds",
        ),
        _system(
            "Patient social scoring",
            "proposed",
            "prohibited",
            "vendor",
            "Proposed: rank patients by social behaviour for priority (Art. 5(1)(c)).",
            vendor="Unnamed vendor",
        ),
        _system(
            "Sepsis early warning",
            "proposed",
            "unclassified",
            "in_house",
            "Early warning of sepsis from vital signs.",
            [("MIMIC-IV (de-identified)", "training")],
        ),
        _system(
            "Rota optimiser v1",
            "retired",
            "minimal",
            "in_house",
            "Nurse rota optimiser, replaced by the scheduling suite.",
        ),
    ],
    deployments=[
        ("ed-triage-prod", "ED triage assistant", "gpu-hot-01", "production", True),
        ("cxr-second-reader-prod", "Chest X-ray second reader", "gpu-hot-02", "production", False),
        ("patient-faq-prod", "Patient FAQ chatbot", "llm-endpoint", "production", True),
        ("note-summariser-pilot", "Clinical note summariser", "gpu-main-01", "staging", False),
        ("bed-forecast-prod", "Bed demand forecasting", "cpu-01", "production", False),
        ("rota-optimiser-prod", "Rota optimiser v1", "gpu-main-02", "production", False),
    ],
)

LOGISTICS = Profile(
    sites=[
        _site("chi-dc1", "Chicago DC", "on_prem_dc", "US", "Illinois"),
        _site("sg-colo", "Equinix SG1", "colocation", "SG", "Singapore", "Equinix"),
        _site("aws-us-east-1", "AWS N. Virginia", "cloud_region", "US", "us-east-1", "AWS"),
        _site("aws-ap-southeast-1", "AWS Singapore", "cloud_region", "SG", "ap-southeast-1", "AWS"),
        _site("rtm-warehouse", "Rotterdam warehouse", "edge", "NL", "Rotterdam"),
    ],
    on_prem="chi-dc1",
    colo="sg-colo",
    cloud="aws-us-east-1",
    cloud_2="aws-ap-southeast-1",
    edge="rtm-warehouse",
    accounts=[
        {
            "provider": "aws",
            "account_id": "{n}987654321",
            "name": "Global ML",
            "monthly_budget": "120000.00",
            "currency": "USD",
        },
        {
            "provider": "aws",
            "account_id": "{n}555000111",
            "name": "APAC",
            "monthly_budget": "30000.00",
            "currency": "USD",
        },
    ],
    flagship_gpu=("NVIDIA H200 141GB HBM3e", 141, "38.0000"),
    datasets=[
        _dataset(
            "Shipment events",
            "internal",
            False,
            "US",
            "Network operations",
            retention_days=1095,
            quality_score=92,
            provenance="TMS event stream",
        ),
        _dataset(
            "Warehouse camera footage",
            "confidential",
            True,
            "NL",
            "Site security",
            retention_days=30,
            provenance="CCTV",
            quality_score=64,
        ),
        _dataset(
            "Driver telematics",
            "confidential",
            True,
            "US",
            "Fleet safety",
            retention_days=365,
            provenance="Vehicle telematics units",
        ),
        _dataset(
            "Customer addresses",
            "restricted",
            True,
            "SG",
            "Customer data owner",
            retention_days=2190,
            provenance="CRM",
        ),
        _dataset(
            "Weather and traffic feeds",
            "public",
            False,
            "",
            "Planning",
            licence="Commercial API terms",
            provenance="Weather and traffic APIs",
        ),
        _dataset(
            "Job applications",
            "restricted",
            True,
            "US",
            "Talent acquisition",
            retention_days=365,
            provenance="Applicant tracking system",
        ),
    ],
    ai_systems=[
        _system(
            "Route optimisation",
            "production",
            "minimal",
            "in_house",
            "Plans delivery routes every night.",
            [("Shipment events", "training"), ("Weather and traffic feeds", "inference")],
            model_name="route-rl",
            model_version="7.0",
        ),
        _system(
            "Demand forecasting",
            "production",
            "minimal",
            "in_house",
            "Forecasts parcel volumes per depot.",
            [("Shipment events", "training")],
        ),
        _system(
            "Driver drowsiness detection",
            "pilot",
            "high",
            "vendor",
            "Alerts drivers and the control room to signs of fatigue.",
            [("Driver telematics", "training")],
            vendor="SafeRoad",
            personal_data=True,
            human_oversight=True,
            human_overseer="Fleet control room",
        ),
        _system(
            "CV screening",
            "production",
            "high",
            "vendor",
            "Shortlists warehouse job applications for recruiters.",
            [("Job applications", "inference")],
            vendor="HireFast",
            personal_data=True,
            human_oversight=False,
        ),
        _system(
            "Delivery chatbot",
            "production",
            "limited",
            "open_weights",
            "Answers 'where is my parcel' in chat.",
            [("Customer addresses", "inference"), ("Shipment events", "inference")],
            model_name="Llama 3.1 8B Instruct",
            user_facing=True,
            generative=True,
            personal_data=True,
        ),
        _system(
            "Warehouse worker emotion monitoring",
            "proposed",
            "prohibited",
            "vendor",
            "Proposed: infer worker emotions from cameras (EU AI Act Art. 5(1)(f)).",
            [("Warehouse camera footage", "training")],
            vendor="Unnamed vendor",
        ),
        _system(
            "Parcel damage detection",
            "proposed",
            "unclassified",
            "in_house",
            "Detect damaged parcels from conveyor photos.",
        ),
        _system(
            "Legacy ETA model",
            "retired",
            "minimal",
            "in_house",
            "Old ETA predictor, replaced by route optimisation.",
        ),
    ],
    deployments=[
        ("route-optimisation-prod", "Route optimisation", "gpu-hot-01", "production", True),
        ("cv-screening-prod", "CV screening", "gpu-hot-02", "production", False),
        ("demand-forecast-prod", "Demand forecasting", "cpu-01", "production", True),
        ("delivery-chatbot-prod", "Delivery chatbot", "llm-endpoint", "production", False),
        ("drowsiness-pilot", "Driver drowsiness detection", "edge-01", "staging", True),
        ("legacy-eta-prod", "Legacy ETA model", "gpu-main-02", "production", False),
    ],
)

PROFILES: dict[str, Profile] = {"finance": FINANCE, "health": HEALTH, "logistics": LOGISTICS}


def gpu_uuids(slug: str, hostname: str, count: int) -> list[str]:
    return [f"GPU-{uuid.uuid5(_UUID_NAMESPACE, f'{slug}/{hostname}/{i}')}" for i in range(count)]


def _account_ref(account: dict) -> str:
    return f"{account['provider']}:{account['account_id']}"


def _compute(slug: str, profile: Profile, accounts: list[dict]) -> list[dict]:
    flagship, flagship_memory, flagship_cost = profile.flagship_gpu

    def node(suffix, kind, site, *, gpus=0, model="", memory=0, cost="0", **extra):
        hostname = f"{slug}-{suffix}"
        return {
            "hostname": hostname,
            "kind": kind,
            "site": site,
            "gpu_model": model,
            "gpu_count": gpus,
            "gpu_memory_gb": memory,
            "hourly_cost": cost,
            "gpu_uuids": gpu_uuids(slug, hostname, gpus) if kind == "gpu_node" else [],
            **extra,
        }

    rows = [
        node(
            "gpu-hot",
            "gpu_cluster",
            profile.on_prem,
            gpus=32,
            model=flagship,
            memory=flagship_memory,
        ),
        node("gpu-main", "gpu_cluster", profile.colo, gpus=24, model="NVIDIA A100 80GB", memory=80),
    ]
    for index in range(1, 5):
        rows.append(
            node(
                f"gpu-hot-{index:02d}",
                "gpu_node",
                profile.on_prem,
                gpus=8,
                model=flagship,
                memory=flagship_memory,
                cost=flagship_cost,
                cluster=f"{slug}-gpu-hot",
            )
        )
    for index in range(1, 4):
        rows.append(
            node(
                f"gpu-main-{index:02d}",
                "gpu_node",
                profile.colo,
                gpus=8,
                model="NVIDIA A100 80GB",
                memory=80,
                cost="18.6000",
                cluster=f"{slug}-gpu-main",
                status="maintenance" if index == 3 else "active",
            )
        )
    rows += [
        node(
            "gpu-idle-01",
            "gpu_node",
            profile.cloud,
            gpus=4,
            model="NVIDIA L40S",
            memory=48,
            cost="7.3200",
            cloud_account=_account_ref(accounts[0]),
        ),
        node(
            "edge-01", "gpu_node", profile.edge, gpus=1, model="NVIDIA L4", memory=24, cost="0.8100"
        ),
        node("cpu-01", "cpu_node", profile.on_prem, cost="0.9500"),
        node("cpu-02", "cpu_node", profile.on_prem, cost="0.9500"),
        node(
            "llm-endpoint",
            "managed_endpoint",
            profile.cloud_2,
            cost="12.0000",
            cloud_account=_account_ref(accounts[-1]),
        ),
    ]
    return rows


def _links(profile: Profile) -> list[dict]:
    def link(a, b, bandwidth, latency, redundancy, provider):
        return {
            "site_a": a,
            "site_b": b,
            "bandwidth_mbps": bandwidth,
            "latency_ms": latency,
            "redundancy": redundancy,
            "provider": provider,
        }

    return [
        link(profile.on_prem, profile.colo, 100000, "1.20", "active_active", "Dark fibre"),
        link(profile.on_prem, profile.cloud, 10000, "4.50", "active_passive", "Direct connect"),
        link(profile.colo, profile.cloud_2, 10000, "6.80", "active_passive", "Cloud exchange"),
        link(profile.edge, profile.on_prem, 500, "18.00", "none", "SD-WAN over broadband"),
    ]


def _deployments(slug: str, profile: Profile) -> list[dict]:
    rows = []
    documented = {row["name"]: row.get("model_version") for row in profile.ai_systems}
    for index, (name, system, compute, environment, operated) in enumerate(profile.deployments):
        version = documented.get(system) or f"{1 + index % 3}.{index}.0"
        if index == 1:
            # One deployment drifted from the documented version (a compliance finding).
            version = f"{version}-hotfix"
        row = {
            "name": name,
            "ai_system": system,
            "model_version": version,
            "compute": f"{slug}-{compute}",
            "environment": environment,
            "monitoring_enabled": operated,
            "logging_enabled": operated,
            "log_retention_days": 365 if operated else None,
            "deployed_at": f"2025-0{1 + index % 9}-1{index % 10}T09:00:00Z",
        }
        if operated:
            row["runbook_url"] = f"https://runbooks.{slug}.example.com/{name}"
            row["approved_by"] = "AI governance board"
        if compute == "llm-endpoint":
            row["endpoint"] = f"https://{slug}-llm.example.com/v1/chat"
        rows.append(row)
    return rows


#: How much of its profile's estate a tenant has: all of it, all of it kept in good order by a
#: mature client, or an onboarding client's pilot.
ESTATE_SCOPES = ("full", "kept", "pilot")
#: When a mature client last reviewed its suppliers and validated its data: two months ago.
_KEPT_ON = (_TODAY - datetime.timedelta(days=60)).isoformat()


def _kept(document: dict, slug: str) -> dict:
    """The estate a mature client keeps: nothing prohibited or unclassified, every system owned,
    documented and assessed, every deployment monitored, approved and on its documented version,
    every dataset traced and validated, and nothing left deployed for a retired system."""
    systems = []
    for row in document["ai_systems"]:
        if row["risk_tier"] == "prohibited":
            continue
        row = {
            "business_owner": "Chief Data Officer",
            "technical_owner": "ML platform team",
            **row,
            "risk_tier": "minimal" if row["risk_tier"] == "unclassified" else row["risk_tier"],
            "risk_classified_at": row.get("risk_classified_at", "2025-03-14"),
            "risk_reviewed_at": (_TODAY - datetime.timedelta(days=75)).isoformat(),
            "ai_disclosure": True,
            "vendor_assessed_at": _KEPT_ON,
        }
        if row["risk_tier"] == "high":
            row |= {
                "technical_documentation_url": f"https://docs.{slug}.example.com/ai/{len(systems)}",
                "human_oversight": True,
                "human_overseer": row.get("human_overseer") or "Clinical safety officer",
                "fria_completed_at": _KEPT_ON,
            }
        if row["stage"] == "production":
            row["eu_database_id"] = (
                row.get("eu_database_id") or f"EU-AI-{slug.upper()}-{len(systems)}"
            )
        systems.append(row)
    for row in systems:
        # The version in the register is the version deployed.
        deployed = [d for d in document["deployments"] if d["ai_system"] == row["name"]]
        if deployed and not row.get("model_version"):
            row["model_version"] = deployed[0]["model_version"].removesuffix("-hotfix")
    names = {row["name"]: row for row in systems}
    retired = {name for name, row in names.items() if row["stage"] == "retired"}
    deployments = [
        {
            **row,
            "model_version": names[row["ai_system"]]["model_version"],
            "monitoring_enabled": True,
            "logging_enabled": True,
            "log_retention_days": 365,
            "runbook_url": f"https://runbooks.{slug}.example.com/{row['name']}",
            "approved_by": "AI governance board",
        }
        for row in document["deployments"]
        if row["ai_system"] in names and row["ai_system"] not in retired
    ]
    datasets = [
        {
            "provenance": "Recorded at intake",
            "licence": "Internal use",
            **row,
            "quality_score": row.get("quality_score") or 90,
            "last_validated_at": f"{_KEPT_ON}T08:00:00Z",
        }
        for row in document["datasets"]
    ]
    return {**document, "ai_systems": systems, "deployments": deployments, "datasets": datasets}


def _pilot_only(document: dict, spec: Profile) -> dict:
    """An onboarding client's first footprint: the profile's first pilot system on its staging
    deployment, the GPU cluster that hosts it (all its nodes) and that cluster's site; nothing
    in production, no cloud account yet."""
    system = next(row for row in spec.ai_systems if row["stage"] == "pilot")
    deployments = [row for row in document["deployments"] if row["ai_system"] == system["name"]]
    hosts = {row["compute"] for row in deployments}
    clusters = {
        row.get("cluster") or row["hostname"]
        for row in document["compute"]
        if row["hostname"] in hosts
    }
    compute = [
        row
        for row in document["compute"]
        if row["hostname"] in clusters or row.get("cluster") in clusters
    ]
    sites = {row["site"] for row in compute}
    used = {link["dataset"] for link in system["datasets"]}
    return {
        "sites": [site for site in spec.sites if site["code"] in sites],
        "cloud_accounts": [],
        "compute": compute,
        "links": [],
        "datasets": [row for row in spec.datasets if row["name"] in used],
        "ai_systems": [system],
        "deployments": deployments,
    }


def demo_document(tenant, *, profile: str, scope: str = "full") -> dict:
    """The demo estate of ``tenant`` as an import document (see ``bulk.py``): the whole
    profile, or with ``scope="pilot"`` only an onboarding client's first pilot."""
    try:
        spec = PROFILES[profile]
    except KeyError:
        raise ValueError(
            f"Unknown demo profile {profile!r}; choose one of: {', '.join(PROFILES)}."
        ) from None
    slug = tenant.slug
    # Account ids differ per tenant, as real ones would.
    number = str(100 + tenant.pk % 900)
    accounts = [
        {**account, "account_id": account["account_id"].format(slug=slug, n=number)}
        for account in spec.accounts
    ]
    if scope not in ESTATE_SCOPES:
        raise ValueError(
            f"Unknown estate scope {scope!r}; choose one of: {', '.join(ESTATE_SCOPES)}."
        )
    document = {
        "sites": spec.sites,
        "cloud_accounts": accounts,
        "compute": _compute(slug, spec, accounts),
        "links": _links(spec),
        "datasets": spec.datasets,
        "ai_systems": spec.ai_systems,
        "deployments": _deployments(slug, spec),
    }
    if scope == "pilot":
        return _pilot_only(document, spec)
    return _kept(document, slug) if scope == "kept" else document


def seed_inventory(tenant, *, profile: str, scope: str = "full") -> dict:
    """Give ``tenant`` the demo estate of ``profile`` (all of it, or its pilot only: see
    ``demo_document``); rows that exist already are left alone.

    Returns the import's created / unchanged counts per section.
    """
    document = demo_document(tenant, profile=profile, scope=scope)
    with tenant_scope(tenant.id):
        counts = inventory_import(tenant=tenant, document=document, create_only=True)
        counts["gpus"] = seed_gpus(tenant)
    return counts


def seed_gpus(tenant) -> dict[str, int]:
    """One GpuDevice per listed UUID of each GPU node (index = its place in the list), as a
    first dcgm-exporter scrape would learn them; audited. Missing ones only."""
    nodes = ComputeResource.objects.filter(tenant=tenant, kind=ComputeKind.GPU_NODE)
    known = set(GpuDevice.objects.filter(tenant=tenant).values_list("compute_id", "index"))
    created = 0
    for node in nodes.order_by("hostname"):
        for index, gpu_uuid in enumerate(node.gpu_uuids or ()):
            if (node.pk, index) not in known:
                gpu_device_create(
                    tenant=tenant,
                    compute=node,
                    index=index,
                    uuid=gpu_uuid,
                    model_name=node.gpu_model,
                )
                created += 1
    return {"created": created, "updated": 0, "unchanged": len(known)}
