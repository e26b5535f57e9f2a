"""Staff pages across contexts, included under ``portal/`` in msp/urls.py."""

from django.urls import path

from msp.console import views

app_name = "console"

urlpatterns = [
    path("<slug:slug>/360/", views.tenant_360, name="tenant-360"),
]
