from django.contrib.auth import views as auth_views
from django.urls import path

from tenants.portal import views
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
    path("switch/", views.switch_tenant, name="switch"),
    path("", views.home, name="home"),
    # Tenant pages: every view below is wrapped in portal_tenant_view (a test checks it).
    path("<slug:slug>/", views.overview, name="overview"),
    path("<slug:slug>/team/", views.team, name="team"),
    path("<slug:slug>/team/<int:membership_id>/", views.member_edit, name="member-edit"),
    path(
        "<slug:slug>/team/<int:membership_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path("<slug:slug>/tokens/", views.tokens, name="tokens"),
    path("<slug:slug>/tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
]
