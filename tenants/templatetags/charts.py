"""``{% chart obj %}``: a chart from ``tenants.portal.charts`` drawn with its text equivalent."""

from django import template

register = template.Library()


@register.inclusion_tag("charts/chart.html")
def chart(chart, caption: str = "", id: str = ""):  # noqa: A002 - the element's HTML id
    return {"chart": chart, "caption": caption, "id": id}
