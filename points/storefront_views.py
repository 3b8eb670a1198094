"""The shopper's storefront pages: the wallet at ``/``, history with receipts, notifications
and offers nearby. Reads only (``points.wallet_selectors``); the receipt is the same JSON the
API gives a party of the transaction, as a file."""

import json

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from alliance.errors import DomainError
from alliance.permissions import access_required, can_access
from ledger import log_selectors
from points import views as storefront_views
from points import wallet_selectors


@require_GET
@access_required("explorer")
def wallet_home(request: HttpRequest) -> HttpResponse:
    """``/``: open to everyone (the "explorer" row of the table): the wallet for a signed-in
    shopper, the welcome page for a visitor."""
    if not can_access(request, "storefront"):
        return storefront_views.landing_or_home(request)
    return render(request, "storefront/wallet/home.html", {
        "wallet": wallet_selectors.wallet_get(user=request.user),
        "notifications": wallet_selectors.notification_list(user=request.user, limit=3),
    })


class HistoryFilterForm(forms.Form):
    asset = forms.CharField(label=gettext_lazy("Point type"), required=False, max_length=16)
    kind = forms.CharField(label=gettext_lazy("Kind"), required=False, max_length=32)
    since = forms.DateField(label=gettext_lazy("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=gettext_lazy("To"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))


@require_GET
@access_required("storefront")
def history(request: HttpRequest) -> HttpResponse:
    form = HistoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    postings = wallet_selectors.history_list(
        user=request.user, asset_code=(filters.get("asset") or "").upper(),
        kind=filters.get("kind") or "", since=filters.get("since"), until=filters.get("until"),
    )
    page = Paginator(postings, 30).get_page(request.GET.get("page"))
    for posting in page.object_list:
        posting.amount_major = posting.asset.to_major(posting.amount)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "storefront/wallet/history.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "choices": wallet_selectors.history_filter_choices(user=request.user),
    })


@require_GET
@access_required("storefront")
def receipt_download(request: HttpRequest, transaction_id: int) -> HttpResponse:
    """The receipt of one of the shopper's transactions as a file (``receipt-<id>.json``),
    the same JSON as ``GET /api/v1/transactions/<id>/receipt``."""
    try:
        transaction = log_selectors.transaction_get(transaction_id=transaction_id)
    except DomainError:
        raise Http404(_("No such transaction.")) from None
    if not log_selectors.transaction_party_check(transaction=transaction, user=request.user):
        raise Http404(_("No such transaction."))
    try:
        receipt = log_selectors.receipt_get(transaction=transaction)
    except DomainError:
        return render(request, "storefront/wallet/receipt_pending.html",
                      {"transaction": transaction}, status=409)
    response = HttpResponse(json.dumps(receipt, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="receipt-{transaction.pk}.json"'
    return response


@require_GET
@access_required("storefront")
def notifications(request: HttpRequest) -> HttpResponse:
    return render(request, "storefront/wallet/notifications.html", {
        "notifications": wallet_selectors.notification_list(user=request.user, limit=100),
    })


def _coordinate(value: str | None, low: float, high: float) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    if number is None or not low <= number <= high:
        return None
    return number


@require_GET
@access_required("storefront")
def nearby(request: HttpRequest) -> HttpResponse:
    """Stores of the shopper's district, ranked by the points the shopper can use there,
    then by distance from where the browser says it is (or the district's centre)."""
    wallet = wallet_selectors.wallet_get(user=request.user)
    district_id = wallet_selectors.shopper_district_id(user=request.user)
    offers, located = [], False
    if district_id is not None:
        lat = _coordinate(request.GET.get("lat"), -90, 90)
        lng = _coordinate(request.GET.get("lng"), -180, 180)
        located = lat is not None and lng is not None
        if not located:
            lat, lng = wallet_selectors.district_centre(district_id) or (0.0, 0.0)
        offers = wallet_selectors.nearby_offers(user=request.user, district_id=district_id,
                                                lat=lat, lng=lng, wallet=wallet)
    return render(request, "storefront/wallet/nearby.html", {
        "offers": offers, "located": located, "wallet": wallet,
    })
