from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from tenants.portal import mfa, views
from tenants.portal.forms import PortalAuthenticationForm

app_name = "portal"

# Paths before the tenant pages are reserved words: no tenant slug can use them.
urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="portal/login.html",
            authentication_form=PortalAuthenticationForm,
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Password reset by email: Django's views, our templates.
    path(
        "password-reset/",
        auth_views.PasswordResetView.as_view(
            template_name="portal/password_reset_form.html",
            email_template_name="portal/password_reset_email.txt",
            subject_template_name="portal/password_reset_subject.txt",
            success_url=reverse_lazy("portal:password-reset-sent"),
        ),
        name="password-reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="portal/password_reset_sent.html"),
        name="password-reset-sent",
    ),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="portal/password_reset_confirm.html",
            success_url=reverse_lazy("portal:password-reset-complete"),
        ),
        name="password-reset-confirm",
    ),
    path(
        "reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="portal/password_reset_complete.html"
        ),
        name="password-reset-complete",
    ),
    # Two-factor sign-in: the user's own, whatever tenant they are in.
    path("account/two-factor/", mfa.security, name="mfa"),
    path("account/two-factor/verify/", mfa.verify, name="mfa-verify"),
    path("account/two-factor/setup/", mfa.setup, name="mfa-setup"),
    path("account/two-factor/recovery-codes/", mfa.recovery_codes, name="mfa-recovery-codes"),
    path("account/two-factor/disable/", mfa.disable, name="mfa-disable"),
    path("account/preferences/", views.preferences, name="preferences"),
    path("switch/", views.switch_tenant, name="switch"),
    path("", views.home, name="home"),
    # Tenant pages: every view below is wrapped in portal_tenant_view (a test checks it).
    path("<slug:slug>/", views.overview, name="overview"),
    path("<slug:slug>/team/", views.team, name="team"),
    path("<slug:slug>/team/two-factor/", views.team_two_factor, name="team-two-factor"),
    path("<slug:slug>/team/<int:membership_id>/", views.member_edit, name="member-edit"),
    path(
        "<slug:slug>/team/<int:membership_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path("<slug:slug>/tokens/", views.tokens, name="tokens"),
    path("<slug:slug>/tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
]
