"""Template helpers of the onboarding pages: amounts in minor units, the deposit banner."""

from decimal import Decimal

from django import template

from alliance.permissions import current_merchant, roles_of

register = template.Library()


@register.filter
def major(minor, asset) -> Decimal | str:
    """``{{ posting.amount|major:shared }}``: minor units as the asset's major units."""
    if minor is None or asset is None:
        return ""
    return asset.to_major(int(minor))


@register.filter
def plain(value) -> str:
    """A Decimal without trailing zeros or exponent: 500.000000 → 500, 0.200000 → 0.2."""
    if not isinstance(value, Decimal):
        return "" if value is None else str(value)
    return f"{value.normalize():f}"


@register.inclusion_tag("dashboard/deposit/banner.html", takes_context=True)
def deposit_banner(context) -> dict:
    """A warning on dashboard pages while the merchant's deposit is below its warning level
    or the minimum (SPEC §4.3); empty otherwise."""
    from alliance.permissions import Role
    from ledger.services import alliance_asset
    from merchants.services import deposit_status

    request = context.get("request")
    merchant = current_merchant(request) if request is not None else None
    if merchant is None:
        return {}
    status = deposit_status(merchant)
    if status.level == "ok":
        return {}
    return {"status": status, "shared": alliance_asset("SHARED"),
            "is_owner": Role.OWNER in roles_of(request)}
