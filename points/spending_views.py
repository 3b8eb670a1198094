"""Spending pages: the storefront's catalog, vouchers, exchange and lotteries; the dashboard's
catalog, voucher validation, exchange settings and lotteries; the console's exchange matrix;
the public fairness page of a lottery. Forms in, one service call, template out."""

from datetime import date

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from alliance.errors import DomainError
from alliance.permissions import access_required, current_merchant
from ledger.services import alliance_asset
from merchants.models import Store

from . import catalog, exchange, lottery
from . import spending_selectors as selectors
from .holds import deduction_ratio
from .models import CatalogItem, LotteryCampaign, Voucher
from .spending_forms import (
    CatalogItemForm,
    ExchangeForm,
    LotteryCampaignForm,
    PrizeTierForm,
    RedeemForm,
    SpendingSettingsForm,
    VoucherLookupForm,
)


def _refused(request: HttpRequest, exc: DomainError) -> None:
    messages.error(request, str(exc.message))


# --- storefront: catalog -----------------------------------------------------------------------


@require_GET
@access_required("storefront.catalog")
def catalog_list(request: HttpRequest) -> HttpResponse:
    """The catalog: search, a merchant filter and "only what I can afford"."""
    q = request.GET.get("q", "")[:100]
    merchant = request.GET.get("merchant", "")[:50]
    affordable = request.GET.get("affordable") == "1"
    items = selectors.catalog_item_list(shopper=request.user, q=q, merchant=merchant,
                                        affordable=affordable)
    page = Paginator(items, 24).get_page(request.GET.get("page"))
    return render(request, "storefront/spending/catalog_list.html", {
        "page": page, "q": q, "merchant_slug": merchant, "affordable": affordable,
        "merchants": selectors.catalog_merchants(),
    })


@access_required("storefront.catalog")
def catalog_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    item = selectors.catalog_item_get(item_id)
    if item is None or not item.active:
        raise Http404
    if request.method == "POST":
        form = RedeemForm(request.POST)
        if form.is_valid():
            try:
                voucher = catalog.catalog_redeem(
                    shopper=request.user, item_id=item.pk,
                    idempotency_key=form.cleaned_data["idempotency_key"])
            except DomainError as exc:
                _refused(request, exc)
                return redirect("spending:catalog-detail", item_id=item.pk)
            messages.success(request, _("Redeemed. Show this voucher at the store."))
            return redirect("spending:voucher-detail", code=voucher.code)
        messages.error(request, _("The form expired; please try again."))
        return redirect("spending:catalog-detail", item_id=item.pk)
    wallet_balance = (item.price_asset.accounts.filter(kind="wallet",
                                                        holder_key=f"u:{request.user.pk}")
                      .values_list("balance", flat=True).first() or 0)
    return render(request, "storefront/spending/catalog_detail.html", {
        "item": item, "form": RedeemForm(), "balance": wallet_balance,
        "available": item.is_available(), "can_afford": wallet_balance >= item.price,
    })


@require_GET
@access_required("explorer")
def catalog_image(request: HttpRequest, item_id: int) -> FileResponse:
    """An item's picture, served with the type its bytes were checked to be."""
    item = CatalogItem.objects.filter(pk=item_id).exclude(image="").first()
    if item is None or not item.image_type:
        raise Http404
    try:
        handle = item.image.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, content_type=item.image_type)
    response["Cache-Control"] = "public, max-age=3600"
    return response


# --- storefront: vouchers ----------------------------------------------------------------------


@require_GET
@access_required("storefront.vouchers")
def voucher_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.shopper_voucher_list(request.user), 30).get_page(
        request.GET.get("page"))
    now = timezone.now()
    rows = [(v, v.effective_state(now)) for v in page]
    return render(request, "storefront/spending/voucher_list.html",
                  {"page": page, "rows": rows})


@require_GET
@access_required("storefront.vouchers")
def voucher_detail(request: HttpRequest, code: str) -> HttpResponse:
    voucher = selectors.shopper_voucher_get(request.user, code)
    if voucher is None:
        raise Http404
    state = voucher.effective_state()
    return render(request, "storefront/spending/voucher_detail.html", {
        "voucher": voucher, "state": state, "qr_svg": voucher_qr(voucher, state),
        "can_cancel": (state == Voucher.State.ISSUED and voucher.item.refundable
                       and voucher.source == Voucher.Source.CATALOG),
    })


def voucher_qr(voucher: Voucher, state: str) -> str:
    return selectors.voucher_qr_svg(voucher) if state == Voucher.State.ISSUED else ""


@require_POST
@access_required("storefront.vouchers")
def voucher_cancel(request: HttpRequest, code: str) -> HttpResponse:
    try:
        voucher = catalog.voucher_cancel(shopper=request.user, code=code)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404 from None
        _refused(request, exc)
        return redirect("spending:voucher-detail", code=code)
    messages.success(request, _("The voucher is cancelled and its price refunded."))
    return redirect("spending:voucher-detail", code=voucher.code)


# --- storefront: exchange ----------------------------------------------------------------------


def _exchange_form(request: HttpRequest, data=None) -> ExchangeForm:
    targets = selectors.exchange_assets()
    allowed = {a.pk for a in targets}
    sources = [w.asset for w in selectors.shopper_brand_wallets(request.user)
               if w.asset_id in allowed]
    return ExchangeForm(data, sources=sources, targets=targets)


def _quote_context(request: HttpRequest) -> dict:
    """The quote for the form's values in the query string, or the reason there is none."""
    form = _exchange_form(request, request.GET if request.GET.get("amount") else None)
    context = {"form": form, "quote": None, "error": ""}
    if form.is_bound and form.is_valid() and "amount_minor" in form.cleaned_data:
        data = form.cleaned_data
        try:
            context["quote"] = exchange.exchange_quote(
                source_asset=data["source_asset"], target_asset=data["target_asset"],
                amount=data["amount_minor"])
        except DomainError as exc:
            context["error"] = str(exc.message)
        else:
            confirm = _exchange_form(request)
            confirm.initial.update({
                "source": data["source"], "target": data["target"], "amount": data["amount"],
                "expected_amount_out": str(context["quote"].amount_out_major),
            })
            context["confirm"] = confirm
    elif form.is_bound:
        context["error"] = " ".join(str(e) for errors in form.errors.values() for e in errors)
    return context


@access_required("storefront.exchange")
def exchange_page(request: HttpRequest) -> HttpResponse:
    """Exchange one merchant's points for another's: a live quote (htmx, or the Quote button
    without JavaScript), then a confirmation that posts exactly what was quoted."""
    if request.method == "POST":
        form = _exchange_form(request, request.POST)
        if not form.is_valid() or "amount_minor" not in form.cleaned_data:
            messages.error(request, _("Check the exchange and try again."))
            return redirect("spending:exchange")
        data = form.cleaned_data
        try:
            done = exchange.exchange_execute(
                shopper=request.user, source_asset=data["source_asset"],
                target_asset=data["target_asset"], amount=data["amount_minor"],
                idempotency_key=data["idempotency_key"],
                expected_amount_out=data["expected_minor"])
        except DomainError as exc:
            _refused(request, exc)
            return redirect("spending:exchange")
        messages.success(request, _("Exchanged %(given)s %(a)s for %(got)s %(b)s.") % {
            "given": done.source_asset.to_major(done.amount_in), "a": done.source_asset.code,
            "got": done.target_asset.to_major(done.amount_out), "b": done.target_asset.code})
        return redirect("spending:exchange")
    context = _quote_context(request)
    context["recent"] = selectors.shopper_exchange_list(request.user)
    return render(request, "storefront/spending/exchange.html", context)


@require_GET
@access_required("storefront.exchange")
def exchange_quote(request: HttpRequest) -> HttpResponse:
    """The quote fragment htmx swaps in while the shopper types."""
    return render(request, "storefront/spending/_exchange_quote.html", _quote_context(request))


# --- storefront: lotteries ---------------------------------------------------------------------


@require_GET
@access_required("storefront.lotteries")
def lottery_list(request: HttpRequest) -> HttpResponse:
    return render(request, "storefront/spending/lottery_list.html", {
        "open": selectors.lottery_open_list(), "closed": selectors.lottery_closed_list(),
    })


@access_required("storefront.lotteries")
def lottery_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = selectors.lottery_get(campaign_id)
    if campaign is None:
        raise Http404
    if request.method == "POST":
        form = RedeemForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("The form expired; please try again."))
        else:
            try:
                draw = lottery.lottery_draw(shopper=request.user, campaign_id=campaign.pk,
                                            idempotency_key=form.cleaned_data["idempotency_key"])
            except DomainError as exc:
                _refused(request, exc)
            else:
                messages.success(request, _draw_message(draw))
        return redirect("spending:lottery-detail", campaign_id=campaign.pk)
    tiers = list(campaign.tiers.select_related("catalog_item").order_by("position"))
    return render(request, "storefront/spending/lottery_detail.html", {
        "campaign": campaign, "tiers": tiers, "total_weight": sum(t.weight for t in tiers),
        "draws": selectors.shopper_draw_list(request.user, campaign), "form": RedeemForm(),
    })


def _draw_message(draw) -> str:
    if draw.outcome != "won":
        if draw.outcome == "out_of_stock":
            return _("You drew “%(tier)s”, but it has run out: no prize this time.") % {
                "tier": draw.drawn_tier.label}
        return _("No prize this time (“%(tier)s”).") % {"tier": draw.drawn_tier.label}
    return _("You won: %(tier)s!") % {"tier": draw.drawn_tier.label}


@require_GET
@access_required("explorer")
def lottery_fairness(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Public: the commitment, and after the close the seed and every draw recomputed."""
    campaign = selectors.lottery_get(campaign_id)
    if campaign is None:
        raise Http404
    report = lottery.lottery_verify(campaign=campaign) if campaign.revealed_seed else None
    page = Paginator(report.checks if report else [], 100).get_page(request.GET.get("page"))
    return render(request, "storefront/spending/lottery_fairness.html", {
        "campaign": campaign, "report": report, "page": page,
        "tiers": list(campaign.tiers.order_by("position")),
        "draw_count": campaign.draws.count(),
    })


# --- dashboard: catalog ------------------------------------------------------------------------


@require_GET
@access_required("dashboard.catalog")
def dashboard_catalog(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    return render(request, "dashboard/spending/catalog_list.html", {
        "merchant": merchant, "items": selectors.merchant_catalog_list(merchant),
    })


@access_required("dashboard.catalog")
def dashboard_catalog_edit(request: HttpRequest, item_id: int | None = None) -> HttpResponse:
    merchant = current_merchant(request)
    item = None
    if item_id is not None:
        item = CatalogItem.objects.select_related("price_asset").filter(
            pk=item_id, merchant=merchant).first()
        if item is None:
            raise Http404
    form = CatalogItemForm(request.POST or None, request.FILES or None, merchant=merchant,
                           instance=item)
    if request.method == "POST" and form.is_valid():
        try:
            saved = catalog.catalog_item_save(merchant=merchant, item=item,
                                              fields=form.service_fields(),
                                              image=form.cleaned_data.get("image"))
        except DomainError as exc:
            _refused(request, exc)
        else:
            messages.success(request, _("“%(item)s” is saved.") % {"item": saved})
            return redirect("dashboard_spending:catalog")
    return render(request, "dashboard/spending/catalog_form.html",
                  {"merchant": merchant, "form": form, "item": item})


# --- dashboard: vouchers -----------------------------------------------------------------------


@access_required("dashboard.vouchers")
def dashboard_vouchers(request: HttpRequest) -> HttpResponse:
    """Validate a voucher by its code: look it up, then accept it once."""
    merchant = current_merchant(request)
    stores = list(merchant.stores.all())
    if request.method == "POST":
        code = request.POST.get("code", "")
        store = _chosen_store(request, stores)
        try:
            voucher = catalog.voucher_validate(merchant=merchant, code=code, by=request.user,
                                               store=store)
        except DomainError as exc:
            _refused(request, exc)
        else:
            messages.success(request, _("Voucher %(code)s accepted: hand over “%(item)s”.") % {
                "code": voucher.display_code, "item": voucher.item})
        return redirect("dashboard_spending:vouchers")
    form = VoucherLookupForm(request.GET or None)
    voucher, state = None, ""
    if form.is_bound and form.is_valid():
        voucher = selectors.merchant_voucher_get(merchant, form.cleaned_data["code"])
        if voucher is None:
            form.add_error("code", _("No voucher of yours has this code."))
        else:
            state = voucher.effective_state()
    return render(request, "dashboard/spending/vouchers.html", {
        "merchant": merchant, "form": form, "voucher": voucher, "state": state,
        "recent": selectors.merchant_recent_validations(merchant),
        "stores": stores, "store_id": request.session.get(VOUCHER_STORE_SESSION_KEY),
    })


# The store a cashier last accepted a voucher at: the picker starts there next time.
VOUCHER_STORE_SESSION_KEY = "voucher_store"


def _chosen_store(request: HttpRequest, stores: list[Store]) -> Store | None:
    """The store picked in the accept form, if it is one of the merchant's (anything else,
    or no pick, records no store); remembered in the session for the next voucher."""
    picked = request.POST.get("store", "")
    store = next((s for s in stores if str(s.pk) == picked), None)
    if store is not None:
        request.session[VOUCHER_STORE_SESSION_KEY] = store.pk
    return store


# --- dashboard: exchange settings --------------------------------------------------------------


@access_required("dashboard.exchange")
def dashboard_exchange(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    current = exchange.exchange_settings(merchant)
    initial = {"exchange_opted_in": current.exchange_opted_in,
               "exchange_daily_cap": current.exchange_daily_cap,
               "deduction_percent": (current.max_deduction_ratio * 100
                                     if current.max_deduction_ratio is not None else None)}
    form = SpendingSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            exchange.exchange_settings_save(
                merchant=merchant, opted_in=form.cleaned_data["exchange_opted_in"],
                daily_cap=form.cleaned_data["exchange_daily_cap"],
                max_deduction_ratio=form.ratio())
        except DomainError as exc:
            _refused(request, exc)
        else:
            messages.success(request, _("Your spending settings are saved."))
            return redirect("dashboard_spending:exchange")
    today = timezone.localdate()
    return render(request, "dashboard/spending/exchange.html", {
        "merchant": merchant, "form": form, "settings": current,
        "used_today": exchange.exchange_used_today(merchant, today),
        "ratio": deduction_ratio(merchant),
    })


# --- dashboard: lotteries ----------------------------------------------------------------------


@access_required("dashboard.lotteries")
def dashboard_lotteries(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    form = LotteryCampaignForm(request.POST or None, merchant=merchant)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = lottery.campaign_create(merchant=merchant, **form.cleaned_data)
        except DomainError as exc:
            _refused(request, exc)
        else:
            messages.success(request, _("The lottery is a draft: add its prizes, then open it."))
            return redirect("dashboard_spending:lottery", campaign_id=campaign.pk)
    return render(request, "dashboard/spending/lottery_list.html", {
        "merchant": merchant, "form": form,
        "campaigns": selectors.merchant_lottery_list(merchant),
    })


def _own_campaign(request: HttpRequest, campaign_id: int) -> LotteryCampaign:
    campaign = (LotteryCampaign.objects.select_related("asset")
                .filter(pk=campaign_id, merchant=current_merchant(request)).first())
    if campaign is None:
        raise Http404
    return campaign


@access_required("dashboard.lotteries")
def dashboard_lottery(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _own_campaign(request, campaign_id)
    merchant = current_merchant(request)
    form = PrizeTierForm(request.POST or None, merchant=merchant)
    if request.method == "POST" and form.is_valid():
        try:
            lottery.tier_add(campaign=campaign, **form.cleaned_data)
        except DomainError as exc:
            _refused(request, exc)
        else:
            messages.success(request, _("Prize tier added."))
            return redirect("dashboard_spending:lottery", campaign_id=campaign.pk)
    tiers = list(campaign.tiers.select_related("catalog_item").order_by("position"))
    return render(request, "dashboard/spending/lottery_detail.html", {
        "merchant": merchant, "campaign": campaign, "tiers": tiers, "form": form,
        "total_weight": sum(t.weight for t in tiers), "draw_count": campaign.draws.count(),
    })


@require_POST
@access_required("dashboard.lotteries")
def dashboard_lottery_action(request: HttpRequest, campaign_id: int,
                             action: str) -> HttpResponse:
    """Open (publish the commitment) or close (reveal the seed) a campaign, or remove a tier
    of a draft."""
    campaign = _own_campaign(request, campaign_id)
    try:
        if action == "open":
            lottery.campaign_open(campaign=campaign)
            messages.success(request, _("The lottery is open; its commitment is published."))
        elif action == "close":
            lottery.campaign_close(campaign=campaign)
            messages.success(request, _("The lottery is closed and its seed revealed."))
        elif action == "remove-tier" and request.POST.get("tier", "").isdigit():
            lottery.tier_remove(campaign=campaign, tier_id=int(request.POST["tier"]))
        else:
            raise Http404
    except DomainError as exc:
        _refused(request, exc)
    return redirect("dashboard_spending:lottery", campaign_id=campaign.pk)


# --- console: the exchange matrix --------------------------------------------------------------


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@require_GET
@access_required("console.supervision")
def console_exchange_matrix(request: HttpRequest) -> HttpResponse:
    """Supervisors: who paid whom for exchanges (SHARED from deposit to deposit), and the
    net balance of each pair."""
    day_from, day_to = _day(request.GET.get("from", "")), _day(request.GET.get("to", ""))
    return render(request, "console/spending/exchange_matrix.html", {
        "matrix": selectors.exchange_matrix(day_from=day_from, day_to=day_to),
        "day_from": day_from, "day_to": day_to, "shared": alliance_asset("SHARED"),
    })

