"""Portal forms for recommendations. They validate input; the services do the writing."""

from __future__ import annotations

from django import forms


class RecommendationActForm(forms.Form):
    """What comes with a recommendation's button: the reason for a dismissal (length, no NUL
    byte) and the list state to go back to."""

    reason = forms.CharField(required=False, max_length=2000)
    state = forms.CharField(required=False, max_length=40)
