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
