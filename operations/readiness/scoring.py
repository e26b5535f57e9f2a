"""Readiness arithmetic: pure functions from a framework definition, answers and signal
readings to pillar scores, an overall score and a level. No database.

A score is computed from an ``inputs`` dict (``score_inputs``), which the snapshot stores, so
``score_from_inputs(definition, snapshot.inputs)`` gives back exactly the stored score.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MAX_ANSWER = 4
LINKS_KEPT = 10  # per signal, in a snapshot's inputs


@dataclass(frozen=True)
class ScoreResult:
    pillars: dict[str, float | None]  # 0–100, one decimal; None: nothing to score it on
    overall: Decimal  # one decimal
    level: int
    # Per pillar, the two parts before blending: {"answers": x | None, "signals": y | None}.
    parts: dict[str, dict[str, float | None]]


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    total = sum(weight for _points, weight in pairs)
    if not pairs or total <= 0:
        return None
    return sum(points * weight for points, weight in pairs) / total


def signal_points(value: float | None, *, target: float, floor: float) -> float | None:
    """0 at ``floor``, 100 at ``target``, linear and clamped (a target below the floor means
    lower is better); None for no data."""
    if value is None:
        return None
    share = (float(value) - floor) / (target - floor)
    return max(0.0, min(100.0, share * 100.0))


def answer_points(value: int | None) -> float | None:
    if value is None:
        return None
    return max(0, min(MAX_ANSWER, int(value))) * 100.0 / MAX_ANSWER


def level_for(definition: dict, overall: Decimal | float) -> int:
    level = 1
    for row in definition["levels"]:
        if float(overall) >= row["min"]:
            level = int(row["level"])
    return level


def level_row(definition: dict, level: int) -> dict:
    return next(row for row in definition["levels"] if row["level"] == level)


def _reading_value(reading) -> float | None:
    if reading is None:
        return None
    if isinstance(reading, dict):
        return reading.get("value")
    if isinstance(reading, (int, float)):
        return float(reading)
    return reading.value


def score_inputs(*, answers: dict[str, int | None], readings: dict, assessment_id=None) -> dict:
    """What a snapshot stores: the answers used and, per signal, its value with the unit,
    explanation and links a reader needs to explain the score later."""
    signals = {}
    for key, reading in sorted(readings.items()):
        if reading is None or isinstance(reading, (int, float)):
            signals[key] = {"value": reading, "unit": "", "explanation": "", "links": []}
            continue
        signals[key] = {
            "value": None if reading.value is None else float(reading.value),
            "unit": reading.unit,
            "explanation": reading.explanation,
            "links": [dict(link) for link in reading.links[:LINKS_KEPT]],
        }
    return {
        "assessment_id": assessment_id,
        "answers": {key: value for key, value in sorted(answers.items()) if value is not None},
        "signals": signals,
    }


def score_from_inputs(definition: dict, inputs: dict) -> ScoreResult:
    """Pillar scores, overall and level from stored ``inputs``."""
    answers = inputs.get("answers") or {}
    signals = inputs.get("signals") or {}
    blend = definition["blend"]
    signals_by_pillar: dict[str, list[tuple[float, float]]] = {}
    for signal in definition["signals"]:
        points = signal_points(
            _reading_value(signals.get(signal["key"])),
            target=signal["target"],
            floor=signal["floor"],
        )
        if points is not None:
            signals_by_pillar.setdefault(signal["pillar"], []).append((points, signal["weight"]))
    pillars: dict[str, float | None] = {}
    parts: dict[str, dict[str, float | None]] = {}
    exact: list[tuple[float, float]] = []
    unscored = float(definition.get("unscored_pillar_counts_as", 0))
    for pillar in definition["pillars"]:
        answered = [
            (answer_points(answers[q["key"]]), q["weight"])
            for q in pillar["questions"]
            if answers.get(q["key"]) is not None
        ]
        from_answers = _weighted_mean(answered)
        from_signals = _weighted_mean(signals_by_pillar.get(pillar["key"], []))
        if from_answers is not None and from_signals is not None:
            score = _weighted_mean(
                [(from_answers, blend["answers"]), (from_signals, blend["signals"])]
            )
        else:
            score = from_answers if from_answers is not None else from_signals
        parts[pillar["key"]] = {"answers": _round(from_answers), "signals": _round(from_signals)}
        pillars[pillar["key"]] = _round(score)
        exact.append((unscored if score is None else score, pillar["weight"]))
    overall = Decimal(repr(_weighted_mean(exact) or 0.0)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return ScoreResult(
        pillars=pillars, overall=overall, level=level_for(definition, overall), parts=parts
    )


def score_compute(
    definition: dict, *, answers: dict[str, int | None], readings: dict, assessment_id=None
) -> tuple[ScoreResult, dict]:
    inputs = score_inputs(answers=answers, readings=readings, assessment_id=assessment_id)
    return score_from_inputs(definition, inputs), inputs


def _questions(definition: dict):
    for pillar in definition["pillars"]:
        for question in pillar["questions"]:
            yield pillar, question


def score_actions(definition: dict, inputs: dict, *, limit: int = 5) -> list[dict]:
    """The actions that would raise the overall score most, one at a time: each signal with
    data brought to its target, each question answered at the top of its scale. Without a
    submitted assessment, submitting one comes first (three pillars have only answers)."""
    current = score_from_inputs(definition, inputs)
    actions: list[dict] = []

    def gain_with(changed: dict) -> tuple[float, int]:
        result = score_from_inputs(definition, changed)
        return float(result.overall - current.overall), result.level

    signals = inputs.get("signals") or {}
    for signal in definition["signals"]:
        stored = signals.get(signal["key"]) or {}
        value = _reading_value(stored)
        if value is None:
            continue
        points = signal_points(value, target=signal["target"], floor=signal["floor"])
        if points >= 100:
            continue
        changed = {
            **inputs,
            "signals": {**signals, signal["key"]: {**stored, "value": signal["target"]}},
        }
        gain, level = gain_with(changed)
        actions.append(
            {
                "kind": "signal",
                "key": signal["key"],
                "pillar": signal["pillar"],
                "title": signal["title"],
                "text": f"Bring “{signal['title']}” from {value:g} {signal['unit']} to "
                f"{signal['target']:g} {signal['unit']}.",
                "current": value,
                "target": signal["target"],
                "gain": round(gain, 1),
                "level_after": level,
                "links": list(stored.get("links") or []),
            }
        )
    answers = inputs.get("answers") or {}
    if answers:
        for pillar, question in _questions(definition):
            value = answers.get(question["key"])
            if value is not None and value >= MAX_ANSWER:
                continue
            changed = {**inputs, "answers": {**answers, question["key"]: MAX_ANSWER}}
            gain, level = gain_with(changed)
            target_label = question["scale"][MAX_ANSWER]
            actions.append(
                {
                    "kind": "question",
                    "key": question["key"],
                    "pillar": pillar["key"],
                    "title": question["text"],
                    "text": f"{question['text']} Reach: “{target_label}”. {question['guidance']}",
                    "current": value,
                    "target": MAX_ANSWER,
                    "gain": round(gain, 1),
                    "level_after": level,
                    "links": [],
                }
            )
    actions.sort(key=lambda action: (-action["gain"], action["kind"], action["key"]))
    if not answers:
        actions.insert(
            0,
            {
                "kind": "assessment",
                "key": "assessment",
                "pillar": None,
                "title": "Submit a readiness assessment",
                "text": "Answer and submit the readiness questionnaire: strategy, talent and "
                "culture are scored from answers only and count 0 until then.",
                "current": None,
                "target": None,
                "gain": None,
                "level_after": None,
                "links": [],
            },
        )
    return [action for action in actions if action["gain"] is None or action["gain"] > 0][:limit]
