"""Loading the readiness framework files (``frameworks/*.yaml``) into ReadinessFramework rows.

One file holds one version. Every file is checked before anything is written (all or
nothing). A new version adds a row; scores keep pointing at the row they were computed with.
A loaded version may be re-loaded with corrected texts, but a change to anything that scores
(keys, weights, scales, targets, levels, blend) is refused: that needs a new version file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.db import transaction

FRAMEWORKS_DIR = Path(__file__).resolve().parent / "frameworks"
SCALE_POINTS = 5  # every question is answered 0–4
PILLAR_KEYS = (
    "strategy",
    "infrastructure",
    "data",
    "governance",
    "talent",
    "culture",
    "ai_operations",
)


@dataclass(frozen=True)
class LoadResult:
    code: str
    version: str
    outcome: str  # "created", "updated" or "unchanged"
    questions: int
    signals: int


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def framework_problems(document) -> list[str]:
    """Everything wrong with a framework document; empty when it can be loaded."""
    if not isinstance(document, dict):
        return ["expected a mapping at the top level"]
    problems = [
        f"missing '{key}'"
        for key in ("code", "version", "title", "pillars", "signals", "levels", "blend")
        if key not in document
    ]
    if problems:
        return problems
    pillars = document["pillars"] or []
    pillar_keys = [str(p.get("key")) for p in pillars if isinstance(p, dict)]
    if sorted(pillar_keys) != sorted(PILLAR_KEYS):
        problems.append(f"pillars must be exactly {', '.join(PILLAR_KEYS)}")
    questions_seen: set[str] = set()
    for pillar in pillars:
        if not isinstance(pillar, dict):
            problems.append("a pillar is not a mapping")
            continue
        where = f"pillar {pillar.get('key')}"
        if not _number(pillar.get("weight")) or pillar["weight"] <= 0:
            problems.append(f"{where}: weight must be a positive number")
        areas = {str(a["key"]) for a in pillar.get("areas") or []}
        questions = pillar.get("questions") or []
        if not 3 <= len(questions) <= 5:
            problems.append(f"{where}: 3 to 5 questions expected, found {len(questions)}")
        for question in questions:
            key = str(question.get("key", ""))
            if not key or key in questions_seen:
                problems.append(f"{where}: question key '{key}' is empty or listed twice")
            questions_seen.add(key)
            for field in ("text", "guidance", "evidence"):
                if not str(question.get(field, "")).strip():
                    problems.append(f"question {key}: missing '{field}'")
            if not _number(question.get("weight")) or question["weight"] <= 0:
                problems.append(f"question {key}: weight must be a positive number")
            scale = question.get("scale") or []
            # A bare YAML `No` is the boolean False: every label must be written as text.
            if len(scale) != SCALE_POINTS or not all(
                isinstance(label, str) and label.strip() for label in scale
            ):
                problems.append(
                    f"question {key}: the scale needs {SCALE_POINTS} text labels (0–4); "
                    'quote words YAML reads otherwise, such as "No"'
                )
            if question.get("area") and str(question["area"]) not in areas:
                problems.append(f"question {key}: unknown area '{question['area']}'")
    signal_keys: set[str] = set()
    for signal in document["signals"] or []:
        key = str(signal.get("key", ""))
        if not key or key in signal_keys:
            problems.append(f"signal key '{key}' is empty or listed twice")
        signal_keys.add(key)
        if str(signal.get("pillar")) not in pillar_keys:
            problems.append(f"signal {key}: unknown pillar '{signal.get('pillar')}'")
        for field in ("weight", "target", "floor"):
            if not _number(signal.get(field)):
                problems.append(f"signal {key}: '{field}' must be a number")
        if _number(signal.get("weight")) and signal["weight"] <= 0:
            problems.append(f"signal {key}: weight must be positive")
        if signal.get("target") == signal.get("floor"):
            problems.append(f"signal {key}: target and floor must differ")
        for field in ("unit", "title"):
            if not str(signal.get(field, "")).strip():
                problems.append(f"signal {key}: missing '{field}'")
    levels = document["levels"] or []
    if [level.get("level") for level in levels] != [1, 2, 3, 4, 5]:
        problems.append("levels must be 1 to 5, in order")
    elif levels[0].get("min") != 0 or any(
        not _number(later.get("min")) or later["min"] <= earlier["min"]
        for earlier, later in zip(levels, levels[1:], strict=False)
    ):
        problems.append("level minimums must start at 0 and rise")
    blend = document["blend"] or {}
    if not all(_number(blend.get(part)) and blend[part] > 0 for part in ("answers", "signals")):
        problems.append("blend needs positive 'answers' and 'signals' percentages")
    return problems


def scoring_fingerprint(definition: dict) -> str:
    """A hash of what scores depend on; texts are left out, so they may be corrected."""
    essentials = {
        "blend": definition.get("blend"),
        "unscored": definition.get("unscored_pillar_counts_as", 0),
        "levels": [(lv["level"], lv["min"]) for lv in definition.get("levels", [])],
        "pillars": [
            (
                p["key"],
                p["weight"],
                [(q["key"], q["weight"], len(q["scale"])) for q in p.get("questions", [])],
            )
            for p in definition.get("pillars", [])
        ],
        "signals": [
            (s["key"], s["pillar"], s["weight"], s["target"], s["floor"])
            for s in definition.get("signals", [])
        ],
    }
    return hashlib.sha256(json.dumps(essentials, sort_keys=True).encode()).hexdigest()


def _read(path: Path) -> tuple[dict, str]:
    raw = path.read_bytes()
    document = yaml.safe_load(raw)
    problems = framework_problems(document)
    if problems:
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    # Round-trip through JSON: what is stored is what the scorer will read back.
    return json.loads(json.dumps(document)), hashlib.sha256(raw).hexdigest()


def readiness_frameworks_load(*, directory: Path | None = None, framework_model=None):
    """Load every ``*.yaml`` in ``directory`` (default: the shipped files); a data migration
    passes its historical model."""
    if framework_model is None:
        from operations.readiness.models import ReadinessFramework as framework_model
    paths = sorted((directory or FRAMEWORKS_DIR).glob("*.yaml"))
    documents = [(*_read(path), path.name) for path in paths]
    with transaction.atomic():
        return [_load_one(*item, framework_model) for item in documents]


def _load_one(document: dict, checksum: str, source: str, framework_model) -> LoadResult:
    code, version = str(document["code"]), str(document["version"])
    counts = (
        sum(len(p["questions"]) for p in document["pillars"]),
        len(document["signals"]),
    )
    framework = framework_model.objects.filter(code=code, version=version).first()
    if framework is not None and framework.checksum == checksum:
        return LoadResult(code, version, "unchanged", *counts)
    if framework is not None:
        if scoring_fingerprint(framework.definition) != scoring_fingerprint(document):
            raise ValueError(
                f"{source}: {code} {version} is already loaded and this file changes how it "
                "scores; add a new version file instead (old scores keep their version)"
            )
        outcome = "updated"
    else:
        framework = framework_model(code=code, version=version)
        outcome = "created"
    framework.title = str(document["title"])
    framework.definition = document
    framework.source_file = source
    framework.checksum = checksum
    framework.save()
    return LoadResult(code, version, outcome, *counts)
