"""The readiness arithmetic on fixed data, and the framework files' loading."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from operations.readiness.catalogue import (
    FRAMEWORKS_DIR,
    framework_problems,
    readiness_frameworks_load,
)
from operations.readiness.models import ReadinessFramework
from operations.readiness.scoring import (
    level_for,
    score_actions,
    score_compute,
    score_from_inputs,
    signal_points,
)
from operations.readiness.signals import SIGNAL_KEYS, SignalReading

SHIPPED = FRAMEWORKS_DIR / "ai-readiness-1.0.yaml"


def shipped_definition() -> dict:
    return yaml.safe_load(SHIPPED.read_bytes())


def reading(key: str, value: float | None) -> SignalReading:
    return SignalReading(key=key, value=value, unit="%", explanation=f"{key} is {value}")


def all_answers(definition: dict, value: int) -> dict[str, int]:
    return {q["key"]: value for p in definition["pillars"] for q in p["questions"]}


# --- The shipped file -----------------------------------------------------------------------------


def test_the_shipped_framework_is_valid_and_names_every_contract_signal():
    definition = shipped_definition()
    assert framework_problems(definition) == []
    assert {s["key"] for s in definition["signals"]} == set(SIGNAL_KEYS)
    infrastructure = next(p for p in definition["pillars"] if p["key"] == "infrastructure")
    assert {a["key"] for a in infrastructure["areas"]} == {
        "compute_capacity",
        "network_connectivity",
        "security",
    }
    labels = [label for p in definition["pillars"] for q in p["questions"] for label in q["scale"]]
    assert all(isinstance(label, str) for label in labels)
    assert [lv["name"] for lv in definition["levels"]] == [
        "Exploring",
        "Experimenting",
        "Operationalising",
        "Scaling",
        "Transforming",
    ]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["pillars"].pop(), "pillars must be exactly"),
        (lambda d: d["pillars"][0]["questions"][0]["scale"].pop(), "scale needs 5 text labels"),
        # YAML reads a bare `No` as False: a label that is not text is refused.
        (
            lambda d: d["pillars"][0]["questions"][0]["scale"].__setitem__(0, False),
            "scale needs 5 text labels",
        ),
        (lambda d: d["signals"].append(dict(d["signals"][0])), "listed twice"),
        (lambda d: d["signals"][0].update(pillar="finance"), "unknown pillar"),
        (lambda d: d["signals"][0].update(target=50, floor=50), "target and floor must differ"),
        (lambda d: d["levels"][2].update(min=10), "must start at 0 and rise"),
        (lambda d: d["pillars"][1]["questions"][0].update(area="power"), "unknown area"),
    ],
)
def test_a_broken_definition_is_refused_with_the_reason(mutate, problem):
    definition = shipped_definition()
    mutate(definition)
    assert any(problem in text for text in framework_problems(definition))


# --- Loading -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_loaded_the_shipped_version_and_loading_again_changes_nothing():
    readiness_frameworks_load()  # a transactional test elsewhere may have flushed the table
    row = ReadinessFramework.objects.get(code="ai-readiness", version="1.0")
    assert row.definition["code"] == "ai-readiness"
    assert len(row.checksum) == 64
    [result] = readiness_frameworks_load()
    assert result.outcome == "unchanged"
    assert (result.questions, result.signals) == (26, 17)


def _write(directory: Path, name: str, definition: dict) -> None:
    (directory / name).write_text(yaml.safe_dump(definition, allow_unicode=True))


@pytest.mark.django_db
def test_loading_is_all_or_nothing(tmp_path):
    good = shipped_definition()
    good["version"] = "9.0"
    broken = copy.deepcopy(good)
    broken["version"] = "9.1"
    broken["levels"] = broken["levels"][:3]
    _write(tmp_path, "a.yaml", good)
    _write(tmp_path, "b.yaml", broken)
    with pytest.raises(CommandError, match="b.yaml: levels must be 1 to 5"):
        call_command("load_readiness_frameworks", directory=tmp_path)
    assert not ReadinessFramework.objects.filter(version__startswith="9.").exists()


@pytest.mark.django_db
def test_a_new_version_adds_a_row_and_a_scoring_change_to_a_loaded_one_is_refused(tmp_path):
    definition = shipped_definition()
    definition["version"] = "2.0"
    _write(tmp_path, "v2.yaml", definition)
    [created] = readiness_frameworks_load(directory=tmp_path)
    assert created.outcome == "created"
    # A corrected text is fine; the scores computed with 2.0 mean the same.
    definition["pillars"][0]["questions"][0]["guidance"] = "Clearer guidance."
    _write(tmp_path, "v2.yaml", definition)
    [updated] = readiness_frameworks_load(directory=tmp_path)
    assert updated.outcome == "updated"
    # A changed weight would change what old 2.0 scores mean.
    definition["pillars"][0]["weight"] = 50
    _write(tmp_path, "v2.yaml", definition)
    with pytest.raises(ValueError, match="add a new version file"):
        readiness_frameworks_load(directory=tmp_path)
    row = ReadinessFramework.objects.get(code="ai-readiness", version="2.0")
    assert row.definition["pillars"][0]["weight"] == 15
    assert row.definition["pillars"][0]["questions"][0]["guidance"] == "Clearer guidance."


# --- Arithmetic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "target", "floor", "points"),
    [
        (None, 95, 50, None),
        (50, 95, 50, 0.0),
        (95, 95, 50, 100.0),
        (72.5, 95, 50, 50.0),
        (120, 95, 50, 100.0),
        (10, 95, 50, 0.0),
        # Lower is better: MTTR 8 h is the target, 72 h the floor.
        (8, 8, 72, 100.0),
        (40, 8, 72, 50.0),
        (100, 8, 72, 0.0),
        (0, 0, 5, 100.0),
        (5, 0, 5, 0.0),
    ],
)
def test_signal_points_are_linear_from_floor_to_target_and_clamped(value, target, floor, points):
    assert signal_points(value, target=target, floor=floor) == points


def test_levels_follow_the_minimums():
    definition = shipped_definition()
    assert [level_for(definition, x) for x in (0, 19.9, 20, 39.9, 40, 60, 79.9, 80, 100)] == [
        1,
        1,
        2,
        2,
        3,
        4,
        4,
        5,
        5,
    ]


def test_answers_only_top_marks_score_100_everywhere():
    definition = shipped_definition()
    result, _inputs = score_compute(definition, answers=all_answers(definition, 4), readings={})
    assert set(result.pillars.values()) == {100.0}
    assert result.overall == Decimal("100.0")
    assert result.level == 5


def test_a_pillar_blends_answers_60_and_signals_40():
    definition = shipped_definition()
    answers = all_answers(definition, 2)  # 50 points everywhere
    readings = {key: reading(key, None) for key in SIGNAL_KEYS}
    # Governance signals: compliance 65 % → 50 points (w3), critical findings 0 → 100 (w2);
    # the other two have no data and are left out: (50×3 + 100×2) / 5 = 70.
    readings["compliance_score"] = reading("compliance_score", 65)
    readings["open_critical_findings"] = reading("open_critical_findings", 0)
    result, _inputs = score_compute(definition, answers=answers, readings=readings)
    assert result.parts["governance"] == {"answers": 50.0, "signals": 70.0}
    assert result.pillars["governance"] == 58.0  # 50 × 0.6 + 70 × 0.4
    # Strategy has no signals: its answers alone.
    assert result.pillars["strategy"] == 50.0
    assert result.parts["strategy"]["signals"] is None
    # Overall: governance (weight 15) at 58, the other 85 weight at 50.
    assert result.overall == Decimal("51.2")
    assert result.level == 3


def test_question_weights_count_within_a_pillar():
    definition = shipped_definition()
    answers = {"strategy.vision": 4, "strategy.sponsorship": 0}  # weights 3 and 2
    result, _ = score_compute(definition, answers=answers, readings={})
    assert result.pillars["strategy"] == 60.0
    # Unanswered questions are left out, not counted as zero.
    assert result.pillars["talent"] is None


def test_without_answers_signal_pillars_score_alone_and_the_others_count_zero():
    definition = shipped_definition()
    readings = {key: reading(key, None) for key in SIGNAL_KEYS}
    readings["dataset_metadata_complete"] = reading("dataset_metadata_complete", 100)
    readings["personal_data_residency_match"] = reading("personal_data_residency_match", 100)
    result, _ = score_compute(definition, answers={}, readings=readings)
    assert result.pillars["data"] == 100.0
    assert result.pillars["strategy"] is None
    assert result.overall == Decimal("15.0")  # data's weight 15 of 100
    assert result.level == 1


def test_no_data_at_all_is_zero_and_level_one_never_a_made_up_value():
    definition = shipped_definition()
    readings = {key: reading(key, None) for key in SIGNAL_KEYS}
    result, inputs = score_compute(definition, answers={}, readings=readings)
    assert set(result.pillars.values()) == {None}
    assert (result.overall, result.level) == (Decimal("0.0"), 1)
    assert all(signal["value"] is None for signal in inputs["signals"].values())


def test_a_score_is_reproduced_exactly_from_its_stored_inputs():
    definition = shipped_definition()
    answers = {key: (index * 7) % 5 for index, key in enumerate(all_answers(definition, 0))}
    readings = {key: reading(key, (index * 13.37) % 100) for index, key in enumerate(SIGNAL_KEYS)}
    result, inputs = score_compute(definition, answers=answers, readings=readings)
    stored = json.loads(json.dumps(inputs))  # as the JSON column gives it back
    assert score_from_inputs(definition, stored) == result


def test_actions_rank_the_largest_gain_first_and_link_the_objects_behind_a_signal():
    definition = shipped_definition()
    answers = all_answers(definition, 4)
    answers["talent.skills"] = 1
    readings = {key: reading(key, None) for key in SIGNAL_KEYS}
    readings["production_deployments_operable"] = SignalReading(
        key="production_deployments_operable",
        value=0,
        unit="%",
        explanation="0 of 3 production deployments are operable",
        links=({"label": "chat", "kind": "deployment", "id": 7},),
    )
    _result, inputs = score_compute(definition, answers=answers, readings=readings)
    actions = score_actions(definition, inputs)
    assert [a["key"] for a in actions] == ["production_deployments_operable", "talent.skills"]
    first = actions[0]
    assert first["links"] == [{"label": "chat", "kind": "deployment", "id": 7}]
    assert first["gain"] > actions[1]["gain"] > 0


def test_without_an_assessment_submitting_one_is_the_first_action():
    definition = shipped_definition()
    _result, inputs = score_compute(definition, answers={}, readings={})
    assert score_actions(definition, inputs)[0]["kind"] == "assessment"
