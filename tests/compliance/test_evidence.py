"""The compliance evidence pack: what it holds for one tenant, framework and period, nothing of
another tenant, the same bytes for the same data, and its download (who, and bad input)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from operations.compliance.evidence import build_evidence_pack
from operations.compliance.models import ComplianceScan, Finding, Framework, Score, Waiver
from tenants.audit import audit_record
from tenants.models import AuditAction
from tenants.scoping import tenant_scope
from tests.compliance.builders import good_system
from tests.factories import make_member

pytestmark = pytest.mark.django_db

OWNER = "ai_system.accountable_owner"  # maps to eu-ai-act:art-26
NOW = timezone.now().replace(microsecond=0)
TODAY = timezone.localdate(NOW, dt.UTC)
PERIOD = {"period_start": TODAY - dt.timedelta(days=30), "period_end": TODAY}
LONG_AGO = NOW - dt.timedelta(days=90)
FILES = [
    "ai-systems.csv",
    "ai-systems.json",
    "audit-trail.csv",
    "audit-trail.json",
    "findings.csv",
    "findings.json",
    "index.html",
    "manifest.sha256",
    "scores.csv",
    "scores.json",
    "waivers.csv",
    "waivers.json",
]


def _finding(tenant, system, label, *, last_seen=None):
    with tenant_scope(tenant.id):
        return Finding.objects.create(
            tenant=tenant,
            check_code=OWNER,
            severity="medium",
            subject_type="ai_system",
            subject_id=system.pk,
            subject_label=label,
            status="fail",
            detail="No business owner is named.",
            first_seen=LONG_AGO,
            failing_since=LONG_AGO,
            last_seen=last_seen or NOW,
        )


def _score(tenant, computed_at, score):
    with tenant_scope(tenant.id):
        scan = ComplianceScan.objects.create(tenant=tenant, finished_at=computed_at)
        return Score.objects.create(
            tenant=tenant,
            scan=scan,
            framework=Framework.objects.get(code="eu-ai-act"),
            computed_at=computed_at,
            score=score,
            controls_total=16,
            controls_assessed=2,
            controls_passed=1,
            controls_failed=1,
            failed_controls=["art-26"],
        )


def _audit_at(when, tenant, monkeypatch):
    # The audit log stamps its own time (append-only); the clock is what moves.
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: when)
        return audit_record(tenant=tenant, action=AuditAction.UPDATE, instance=tenant)


def _world(tenant, monkeypatch, *, name, approver, secret):
    system = good_system(tenant, name=name, business_owner="")
    recorder = make_member(tenant, username=f"{tenant.slug}-recorder")
    with tenant_scope(tenant.id):
        waiver = Waiver.objects.create(
            tenant=tenant,
            check_code=OWNER,
            subject_type="ai_system",
            subject_id=system.pk,
            reason="Owner being recruited.",
            approved_by=approver,
            expires_at=NOW + dt.timedelta(days=30),
            created_by=recorder,
        )
    return {
        "system": system,
        "finding": _finding(tenant, system, secret),
        "stale": _finding(
            tenant, good_system(tenant, name=f"{name} old"), "stale one", last_seen=LONG_AGO
        ),
        "waiver": waiver,
        "score": _score(tenant, NOW - dt.timedelta(days=2), 50),
        "old_score": _score(tenant, LONG_AGO, 10),
        "event": _audit_at(NOW - dt.timedelta(days=3), tenant, monkeypatch),
        "old_event": _audit_at(LONG_AGO, tenant, monkeypatch),
    }


@pytest.fixture
def worlds(tenant_a, tenant_b, monkeypatch):
    return (
        _world(
            tenant_a,
            monkeypatch,
            name="Credit scorer",
            approver="Chief Risk Officer",
            secret="Credit scorer",
        ),
        _world(
            tenant_b,
            monkeypatch,
            name="Borealis triage",
            approver="Borealis CISO",
            secret="Borealis triage",
        ),
    )


def unzip(pack: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def test_the_pack_holds_the_tenants_evidence_of_the_period_only(tenant_a, worlds):
    own, foreign = worlds
    files = unzip(build_evidence_pack(tenant=tenant_a, framework_code="eu-ai-act", **PERIOD))
    assert sorted(files) == FILES

    findings = json.loads(files["findings.json"])
    assert [row["id"] for row in findings] == [own["finding"].pk]  # the stale one is outside
    assert findings[0]["controls"] == "eu-ai-act:art-26"
    assert findings[0]["waived_at_period_end"] is True
    assert findings[0]["failing_since"] == LONG_AGO.isoformat().replace("+00:00", "Z")

    waivers = list(csv.DictReader(io.StringIO(files["waivers.csv"].decode())))
    assert [(w["id"], w["approved_by"], w["recorded_by"]) for w in waivers] == [
        (str(own["waiver"].pk), "Chief Risk Officer", "acme-recorder")
    ]
    scores = json.loads(files["scores.json"])
    assert [(s["score"], s["failed_controls"]) for s in scores] == [("50.0", ["art-26"])]
    register = json.loads(files["ai-systems.json"])
    assert "Credit scorer" in {row["name"] for row in register}

    audit = json.loads(files["audit-trail.json"])
    ids = {row["id"] for row in audit}
    assert own["event"].pk in ids
    assert own["old_event"].pk not in ids
    start = dt.datetime.combine(PERIOD["period_start"], dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(PERIOD["period_end"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    for row in audit:
        assert start <= dt.datetime.fromisoformat(row["occurred_at"]) < end

    everything = b"".join(files.values()).decode()
    for secret in ("Borealis", "borealis"):
        assert secret not in everything
    assert str(foreign["waiver"].pk) not in {w["id"] for w in waivers}


def test_the_index_and_manifest_name_every_file_and_its_checksum(tenant_a, worlds):
    generated = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    files = unzip(
        build_evidence_pack(
            tenant=tenant_a, framework_code="eu-ai-act", generated_at=generated, **PERIOD
        )
    )
    data = [name for name in FILES if name not in ("index.html", "manifest.sha256")]
    manifest = files["manifest.sha256"].decode().splitlines()
    assert manifest == [f"{hashlib.sha256(files[n]).hexdigest()}  {n}" for n in data]
    index = files["index.html"].decode()
    framework = Framework.objects.filter(code="eu-ai-act").latest("loaded_at")
    assert f"version {framework.version}" in index
    assert f"{PERIOD['period_start']} to {PERIOD['period_end']} inclusive, in UTC" in index
    assert "2026-12-01 09:30:00 UTC" in index
    for name in data:
        assert f'href="{name}"' in index
        assert hashlib.sha256(files[name]).hexdigest() in index


def test_the_index_gives_the_generation_time_in_the_tenants_time_zone(tenant_a, worlds):
    tenant_a.plan.timezone = "Europe/Paris"
    tenant_a.plan.save(update_fields=["timezone"])
    generated = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    index = unzip(
        build_evidence_pack(
            tenant=tenant_a, framework_code="eu-ai-act", generated_at=generated, **PERIOD
        )
    )["index.html"].decode()
    assert "2026-12-01 10:30:00 CET (Europe/Paris)" in index


def test_the_same_data_gives_the_same_bytes(tenant_a, worlds):
    generated = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    first = build_evidence_pack(
        tenant=tenant_a, framework_code="eu-ai-act", generated_at=generated, **PERIOD
    )
    second = build_evidence_pack(
        tenant=tenant_a, framework_code="eu-ai-act", generated_at=generated, **PERIOD
    )
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    assert [info.filename for info in infos] == FILES
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    # Without a fixed generation time only the index differs; the manifest stays put.
    later = unzip(build_evidence_pack(tenant=tenant_a, framework_code="eu-ai-act", **PERIOD))
    assert later["manifest.sha256"] == unzip(first)["manifest.sha256"]


@pytest.mark.parametrize(
    ("framework", "start", "end", "field"),
    [
        ("no-such-framework", dt.date(2026, 1, 1), dt.date(2026, 1, 31), "framework"),
        ("eu-ai-act", dt.date(2026, 2, 1), dt.date(2026, 1, 31), "to"),
        ("eu-ai-act", dt.date(2024, 1, 1), dt.date(2026, 1, 31), "to"),
    ],
)
def test_bad_framework_or_period_is_refused(tenant_a, framework, start, end, field):
    with pytest.raises(ValidationError) as refused:
        build_evidence_pack(
            tenant=tenant_a, framework_code=framework, period_start=start, period_end=end
        )
    assert list(refused.value.message_dict) == [field]


# --- The download ------------------------------------------------------------------------------

URL = "/api/v1/tenants/acme/compliance/evidence-pack"
QUERY = {"framework": "eu-ai-act", "from": str(PERIOD["period_start"]), "to": str(TODAY)}


def test_tenant_admins_and_staff_download_the_pack(admin_a, engineer_a, worlds):
    for caller in (admin_a, engineer_a):
        response = caller.client.get(URL, QUERY)
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/zip"
        assert (
            f'filename="acme-eu-ai-act-evidence-{QUERY["from"]}-{QUERY["to"]}.zip"'
            in response["Content-Disposition"]
        )
        files = unzip(response.content)
        assert [r["id"] for r in json.loads(files["findings.json"])] == [worlds[0]["finding"].pk]


def test_members_and_viewers_are_refused(member_a, viewer_a, worlds):
    for caller in (member_a, viewer_a):
        response = caller.client.get(URL, QUERY)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({}, ["framework", "from", "to"]),
        ({**QUERY, "framework": "no-such-framework"}, ["framework"]),
        ({**QUERY, "from": "2026-13-01"}, ["from"]),
        ({**QUERY, "from": QUERY["to"], "to": QUERY["from"]}, ["to"]),
        ({**QUERY, "extra": "1"}, ["extra"]),
        # Midnight after 9999-12-31, or 0001-01-01 in UTC, cannot be represented: a 400, not a 500.
        ({**QUERY, "from": "9999-12-31", "to": "9999-12-31"}, ["from"]),
        ({**QUERY, "from": "0001-01-01", "to": "0001-01-02"}, ["from"]),
    ],
)
def test_bad_input_is_one_400(admin_a, query, fields):
    response = admin_a.client.get(URL, query)
    assert response.status_code == 400
    assert sorted(response.json()["error"]["fields"]) == fields
