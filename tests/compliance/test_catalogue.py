"""Frameworks as versioned data files: loaded by the data migration and ``load_frameworks``,
idempotently; a new version adds a framework version, an edited file updates its controls."""

from __future__ import annotations

import shutil

import pytest
import yaml
from django.core.management import CommandError, call_command

from operations.compliance.catalogue import FRAMEWORKS_DIR
from operations.compliance.models import Control, Framework
from operations.compliance.services import latest_frameworks

pytestmark = pytest.mark.django_db


def test_the_migration_loaded_the_three_frameworks():
    frameworks = {f.code: f for f in Framework.objects.all()}
    assert set(frameworks) == {"eu-ai-act", "iso-42001", "nist-ai-rmf"}
    eu = frameworks["eu-ai-act"]
    codes = set(eu.controls.values_list("code", flat=True))
    wanted = {"art-4", "art-5", "art-6", "art-26", "art-27", "art-49", "art-50", "art-72"}
    assert wanted | {f"art-{n}" for n in range(9, 16)} | {"art-73"} == codes
    nist = set(frameworks["nist-ai-rmf"].controls.values_list("group", flat=True))
    assert nist == {"GOVERN", "MAP", "MEASURE", "MANAGE"}
    assert frameworks["iso-42001"].controls.filter(code="A.6.2.7").exists()


def test_loading_again_changes_nothing(capsys):
    before = list(Control.objects.values_list("pk", "title"))
    call_command("load_frameworks")
    assert "unchanged" in capsys.readouterr().out
    assert list(Control.objects.values_list("pk", "title")) == before
    assert Framework.objects.count() == 3


def test_a_new_version_adds_a_framework_version_and_an_edit_updates_in_place(tmp_path, capsys):
    source = FRAMEWORKS_DIR / "eu-ai-act-2024.yaml"
    document = yaml.safe_load(source.read_text())
    document["version"] = "2024/1689+2027"
    document["controls"] = document["controls"][:3] + [
        {"code": "art-99", "title": "A new article", "summary": "New."}
    ]
    (tmp_path / "eu-ai-act-next.yaml").write_text(yaml.safe_dump(document))
    call_command("load_frameworks", "--directory", str(tmp_path))
    assert "created (4 controls)" in capsys.readouterr().out
    versions = Framework.objects.filter(code="eu-ai-act")
    assert versions.count() == 2
    newest = next(f for f in latest_frameworks() if f.code == "eu-ai-act")
    assert newest.version == "2024/1689+2027"
    assert newest.controls.count() == 4
    assert versions.get(version="2024/1689").controls.count() == 16  # the old one stays

    document["controls"][0]["title"] = "AI literacy (amended)"
    del document["controls"][1]
    (tmp_path / "eu-ai-act-next.yaml").write_text(yaml.safe_dump(document))
    call_command("load_frameworks", "--directory", str(tmp_path))
    assert "updated (3 controls)" in capsys.readouterr().out
    assert newest.controls.get(code="art-4").title == "AI literacy (amended)"
    assert not newest.controls.filter(code="art-5").exists()


def test_a_broken_file_is_refused(tmp_path):
    shutil.copy(FRAMEWORKS_DIR / "nist-ai-rmf-1.0.yaml", tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("code: x\nversion: '1'\ntitle: X\n")
    (tmp_path / "c.yaml").write_text(
        (FRAMEWORKS_DIR / "eu-ai-act-2024.yaml")
        .read_text()
        .replace('version: "2024/1689"', 'version: "next"')
    )
    with pytest.raises(CommandError, match="missing 'controls'"):
        call_command("load_frameworks", "--directory", str(tmp_path))
    # All or nothing: the good new version in c.yaml was not loaded either.
    assert not Framework.objects.filter(version="next").exists()
