"""Template helpers of the spending pages."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def points(minor, asset) -> Decimal | str:
    """``{{ item.price|points:item.price_asset }}``: minor units in the asset's major units."""
    if minor is None or asset is None:
        return ""
    return asset.to_major(int(minor))


@register.filter
def percent(part, whole) -> str:
    """``{{ tier.weight|percent:total }}``: a share as a percentage with two decimals."""
    if not whole:
        return "0.00"
    return f"{Decimal(part) * 100 / Decimal(whole):.2f}"


@register.simple_tag(takes_context=True)
def can_access(context, area: str) -> bool:
    """``{% can_access "dashboard.catalog" as can_catalog %}``: whether the requester's roles
    reach ``area`` of ``ACCESS``, so a tab leads nowhere it would be refused."""
    from alliance.permissions import can_access as allowed

    request = context.get("request")
    return request is not None and allowed(request, area)


@register.filter
def cny(value) -> str:
    """``¥{{ quote.value_in_cny|cny }}``: yuan with two decimals, and more only where the
    exact value has them (a quote keeps six): 3.330000 → 3.33, 9.857142 stays."""
    if value is None or value == "":
        return ""
    amount = Decimal(value)
    cents = amount.quantize(Decimal("0.01"))
    if cents == amount:
        return f"{cents:f}"
    return f"{amount.normalize():f}"
