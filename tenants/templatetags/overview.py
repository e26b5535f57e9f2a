"""``{% overview_panel built %}``: one panel of the client overview, drawn by its own template."""

from django import template
from django.template.loader import render_to_string

register = template.Library()


@register.simple_tag(takes_context=True)
def overview_panel(context, built):
    # The panel's figures plus what every portal template may read (the tenant, the page).
    return render_to_string(
        built.panel.template,
        {**built.context, "tenant": context.get("tenant"), "portal": context.get("portal")},
        request=context.get("request"),
    )
