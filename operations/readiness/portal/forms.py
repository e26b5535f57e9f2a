"""Portal forms for readiness: one pillar of the questionnaire at a time. They validate input;
the services do the writing."""

from __future__ import annotations

from django import forms

from tenants.portal.forms import ServiceErrorsMixin

NOTE_MAX = 4000
EVIDENCE_MAX = 500


def field_names(question_key: str) -> tuple[str, str, str]:
    """The value, note and evidence fields of one question (keys contain dots)."""
    stem = question_key.replace(".", "__")
    return f"{stem}__value", f"{stem}__note", f"{stem}__evidence"


class PillarAnswersForm(ServiceErrorsMixin, forms.Form):
    """The questions of one pillar: a point on the answer scale, a note and an evidence link
    each, all optional (a partial save keeps what is given)."""

    def __init__(self, *args, questions: list[dict], answers: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = questions
        for question in questions:
            value, note, evidence = field_names(question["key"])
            answer = answers.get(question["key"])
            self.fields[value] = forms.TypedChoiceField(
                label=question["text"],
                choices=[(str(point), label) for point, label in enumerate(question["scale"])],
                coerce=int,
                empty_value=None,
                required=False,
                widget=forms.RadioSelect,
                initial=None if answer is None or answer.value is None else str(answer.value),
            )
            self.fields[note] = forms.CharField(
                label="Note",
                required=False,
                max_length=NOTE_MAX,
                widget=forms.Textarea(attrs={"rows": 2}),
                initial=answer.note if answer else "",
            )
            self.fields[evidence] = forms.URLField(
                label="Evidence link",
                required=False,
                max_length=EVIDENCE_MAX,
                assume_scheme="https",
                help_text=question.get("evidence", ""),
                initial=answer.evidence_url if answer else "",
            )

    def changed_answers(self, answers: dict) -> list[dict]:
        """The questions whose answer differs from the saved one (unchanged answers keep who
        gave them and when); a question never answered and left empty is skipped."""
        changed = []
        for question in self.questions:
            value_name, note_name, evidence_name = field_names(question["key"])
            given = {
                "value": self.cleaned_data.get(value_name),
                "note": self.cleaned_data.get(note_name) or "",
                "evidence_url": self.cleaned_data.get(evidence_name) or "",
            }
            saved = answers.get(question["key"])
            if saved is None:
                if given["value"] is None and not given["note"] and not given["evidence_url"]:
                    continue
            elif (saved.value, saved.note, saved.evidence_url) == (
                given["value"],
                given["note"],
                given["evidence_url"],
            ):
                continue
            changed.append({"question_key": question["key"], **given})
        return changed

    def rows(self) -> list[dict]:
        """Each question with its three bound fields, for the template."""
        rows = []
        for question in self.questions:
            value, note, evidence = field_names(question["key"])
            rows.append(
                {
                    "question": question,
                    "value": self[value],
                    "note": self[note],
                    "evidence": self[evidence],
                }
            )
        return rows


class ConfirmSubmitForm(forms.Form):
    confirm = forms.BooleanField(
        label="I have checked the answers: submit them. A submitted assessment cannot change.",
        required=True,
    )
