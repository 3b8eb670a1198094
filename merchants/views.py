"""Merchant dashboard pages."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from alliance.context_processors import Section, visible_sections
from alliance.permissions import access_required, current_merchant
from alliance.templatetags.portal import local_name

from .selectors import staff_membership_list

# The dashboard's sections in the order a shop works through them; each card appears only for
# the roles that ``ACCESS`` lets into its area.
SECTIONS = (
    Section(
        "dashboard.purchases", gettext_lazy("Purchases"),
        gettext_lazy("Record a purchase and credit the shopper's points."),
        "earning:purchase",
    ),
    Section(
        "dashboard.vouchers", gettext_lazy("Vouchers"),
        gettext_lazy("Validate a shopper's voucher by its code or QR."),
        "dashboard_spending:vouchers",
    ),
    Section(
        "dashboard.configure", gettext_lazy("Points and rules"),
        gettext_lazy("Earning rules, tasks, catalog and lotteries."),
        "earning:home",
    ),
    Section(
        "dashboard.catalog", gettext_lazy("Catalog"),
        gettext_lazy("Goods shoppers redeem with points: price, stock and validity."),
        "dashboard_spending:catalog",
    ),
    Section(
        "dashboard.lotteries", gettext_lazy("Lotteries"),
        gettext_lazy("Prize draws whose every outcome shoppers can check."),
        "dashboard_spending:lotteries",
    ),
    Section(
        "dashboard.exchange", gettext_lazy("Exchange and deduction"),
        gettext_lazy("Points exchange with other members, its daily cap, and cash deduction."),
        "dashboard_spending:exchange",
    ),
    Section(
        "dashboard.reports", gettext_lazy("Reports"),
        gettext_lazy("Issued, redeemed and expired points, liability and charts."),
        "reports:home",
    ),
    Section(
        "dashboard.deposit", gettext_lazy("Deposit"),
        gettext_lazy("Shared points locked to operate, and top-ups."),
        "onboarding:deposit",
    ),
    Section(
        "dashboard.staff", gettext_lazy("Staff"),
        gettext_lazy("Invite owners, managers and cashiers."),
        "onboarding:staff",
    ),
    Section(
        "dashboard.api_keys", gettext_lazy("API keys"),
        gettext_lazy("Keys for your tills and online shop."),
        "onboarding:api-keys",
    ),
    Section(
        "dashboard.webhooks", gettext_lazy("Webhooks"),
        gettext_lazy("Signed event notifications to your systems, with a delivery log."),
        "webhooks:list",
    ),
    Section(
        "dashboard.import", gettext_lazy("Bring your members"),
        gettext_lazy("Import the members and balances of your old points system."),
        "onboarding:imports",
    ),
)


@access_required("dashboard")
def dashboard_home(request: HttpRequest) -> HttpResponse:
    """The shell of the dashboard: which merchant, which role, and the sections it opens."""
    context = {
        "merchant": current_merchant(request),
        # Resolved by current_merchant above; it holds the role at this merchant.
        "membership": request._merchant_membership,  # type: ignore[attr-defined]
        "memberships": staff_membership_list(user=request.user),
        "sections": visible_sections(request, SECTIONS),
    }
    return render(request, "dashboard/home.html", context)


@require_POST
@access_required("dashboard")
def merchant_switch(request: HttpRequest) -> HttpResponse:
    """Work for another of the user's merchants; the choice lasts for the session."""
    chosen = request.POST.get("merchant", "")
    membership = (
        staff_membership_list(user=request.user).filter(merchant_id=chosen).first()
        if chosen.isdigit()
        else None
    )
    if membership is None:
        messages.error(request, _("You do not work for that merchant."))
    else:
        request.session["merchant_id"] = membership.merchant_id
        name = local_name(membership.merchant)
        messages.success(request, _("You are now working for %(merchant)s.") % {"merchant": name})
    return redirect("dashboard:home")
