"""Loading the framework data files (``frameworks/*.yaml``) into Framework and Control rows.

Each file holds one version of one framework: ``code``, ``version``, ``title`` and its
``controls`` (``code``, ``title``, ``summary``, optional ``group``). Loading is idempotent:
an unchanged file changes nothing; a file whose version is new adds a framework version row
(older versions and the scores computed against them stay); an edited file of a known
version updates that version's controls in place (new controls added, changed ones updated,
controls no longer listed removed). The ``load_frameworks`` command and a data migration
call ``frameworks_load``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.db import transaction

FRAMEWORKS_DIR = Path(__file__).resolve().parent / "frameworks"


@dataclass(frozen=True)
class LoadResult:
    code: str
    version: str
    outcome: str  # "created", "updated" or "unchanged"
    controls: int


def _read(path: Path) -> tuple[dict, str]:
    raw = path.read_bytes()
    document = yaml.safe_load(raw)
    if not isinstance(document, dict):
        raise ValueError(f"{path.name}: expected a mapping at the top level")
    for key in ("code", "version", "title", "controls"):
        if key not in document:
            raise ValueError(f"{path.name}: missing '{key}'")
    codes = [str(control["code"]) for control in document["controls"]]
    if len(codes) != len(set(codes)):
        raise ValueError(f"{path.name}: a control code is listed twice")
    return document, hashlib.sha256(raw).hexdigest()


def frameworks_load(
    *, directory: Path | None = None, framework_model=None, control_model=None
) -> list[LoadResult]:
    """Load every ``*.yaml`` in ``directory`` (default: the shipped files).

    ``framework_model`` and ``control_model`` default to the live models; a data migration
    passes its historical ones.
    """
    if framework_model is None or control_model is None:
        from operations.compliance.models import Control, Framework

        framework_model, control_model = Framework, Control
    # Every file is read and checked before anything is written: all or nothing.
    paths = sorted((directory or FRAMEWORKS_DIR).glob("*.yaml"))
    documents = [(*_read(path), path.name) for path in paths]
    with transaction.atomic():
        return [
            _load_one(document, checksum, name, framework_model, control_model)
            for document, checksum, name in documents
        ]


def _load_one(document, checksum, source, framework_model, control_model) -> LoadResult:
    code, version = str(document["code"]), str(document["version"])
    framework = framework_model.objects.filter(code=code, version=version).first()
    controls = document["controls"]
    if framework is not None and framework.checksum == checksum:
        return LoadResult(code, version, "unchanged", len(controls))
    outcome = "updated" if framework is not None else "created"
    if framework is None:
        framework = framework_model(code=code, version=version)
    framework.title = str(document["title"])
    framework.publisher = str(document.get("publisher", ""))
    framework.url = str(document.get("url", ""))
    framework.source_file = source
    framework.checksum = checksum
    framework.save()
    existing = {c.code: c for c in control_model.objects.filter(framework=framework)}
    for position, item in enumerate(controls):
        values = {
            "group": str(item.get("group", "")),
            "title": str(item["title"]),
            "summary": str(item.get("summary", "")),
            "position": position,
        }
        control = existing.pop(str(item["code"]), None)
        if control is None:
            control_model.objects.create(framework=framework, code=str(item["code"]), **values)
        elif any(getattr(control, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(control, key, value)
            control.save()
    if existing:
        control_model.objects.filter(pk__in=[c.pk for c in existing.values()]).delete()
    return LoadResult(code, version, outcome, len(controls))
