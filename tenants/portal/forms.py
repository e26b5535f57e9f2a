"""Forms of the tenant portal. They validate input; the services do the writing."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from tenants.models import TenantRole, TokenScope

User = get_user_model()


class PortalAuthenticationForm(AuthenticationForm):
    """Django's login form, with the autocomplete hints password managers look for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username")
        self.fields["password"].widget.attrs.update(autocomplete="current-password")


class SecondFactorCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


class SetupCodeForm(SecondFactorCodeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].help_text = "The 6-digit code your authenticator app now shows."
        self.fields["code"].widget.attrs["inputmode"] = "numeric"


class TenantSecurityForm(forms.Form):
    require_mfa = forms.BooleanField(
        label="Require two-factor sign-in for everyone in this tenant",
        required=False,
        help_text="Each person is asked to set up an authenticator app at their next page view.",
    )


class ServiceErrorsMixin:
    """Put a service's ``ValidationError`` onto the form, next to the fields it names."""

    def add_service_error(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                self.add_error(name if name in self.fields else None, messages)
        else:
            self.add_error(None, error.messages)


class MemberCreateForm(ServiceErrorsMixin, forms.Form):
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    email = forms.EmailField(required=False)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=TenantRole.choices, initial=TenantRole.MEMBER)
    password = forms.CharField(
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Without one, the person cannot sign in until a password is set.",
    )

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            # Checked against the would-be user, so "similar to the username" is caught too.
            candidate = User(
                username=cleaned.get("username", ""),
                email=cleaned.get("email", ""),
                first_name=cleaned.get("first_name", ""),
                last_name=cleaned.get("last_name", ""),
            )
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as error:
                self.add_error("password", error)
        return cleaned


class MemberRoleForm(ServiceErrorsMixin, forms.Form):
    role = forms.ChoiceField(choices=TenantRole.choices)


class TokenCreateForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses it, e.g. “Telemetry collector, Frankfurt”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        initial=[TokenScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text="Grant only what the integration needs.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="1 to 3650. Leave empty for a token that does not expire.",
    )


def _timezone_choices() -> list[tuple[str, str]]:
    import zoneinfo

    zones = sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone or zone == "UTC")
    return [("", "UTC (default)"), *((zone, zone.replace("_", " ")) for zone in zones)]


class TimezoneForm(ServiceErrorsMixin, forms.Form):
    timezone = forms.ChoiceField(
        label="Show times in",
        required=False,
        choices=_timezone_choices,
        help_text="Every page shows times in this zone, and says which.",
    )
