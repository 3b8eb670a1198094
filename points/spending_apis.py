"""Spending over the API (SPEC §4.5, §7).

For merchant systems, signed with an API key: cash-deduction holds (scope ``holds``) and
voucher validation (scope ``vouchers``). For signed-in shoppers (the storefront's session):
the catalog, their vouchers, the exchange and lottery draws. The public: a campaign's
fairness report. Every POST that moves value needs an ``Idempotency-Key`` header; every
refusal is ``{"error": {"code", "message", "details"}}``.
"""

import re

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from alliance.errors import DomainError, NotFound
from alliance.idempotency import IDEMPOTENCY_PARAMETER, idempotency_key
from alliance.permissions import HasAccess
from ledger.models import Asset
from ledger.services import alliance_asset
from merchants.api_auth import HasApiKeyScope, api_key_merchant
from merchants.models import Store

from . import catalog, exchange, holds, lottery
from . import spending_selectors as selectors
from .members import member_resolve
from .models import CashDeduction, CatalogItem, Exchange, LotteryDraw, Voucher
from .spending import (
    CampaignNotFound,
    HoldNotFound,
    VoucherNotFound,
    amount_parse,
    cny_parse,
)

_ERRORS = {
    400: OpenApiResponse(description="Invalid input: `invalid_amount`, "
                                     "`idempotency_key_required`, … (error shape)"),
    401: OpenApiResponse(description="Not signed in / no valid API key"),
    403: OpenApiResponse(description="The key lacks the scope / not allowed"),
}


def _points(asset: Asset, minor: int):
    """Brand points are whole numbers (JSON numbers); other assets' amounts are decimal
    strings in major units, like every CNY figure."""
    return minor if asset.scale == 0 else str(asset.to_major(minor))


def _created(body: dict, instance) -> Response:
    replayed = getattr(instance, "replayed", False)
    response = Response(body, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


class AmountField(serializers.CharField):
    """A number as a JSON number or a string; parsed (and refused) by the service layer,
    so every bad amount answers ``invalid_amount`` naming the field."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)


# --- cash deduction (API key, scope "holds") ---------------------------------------------------


class HoldInSerializer(serializers.Serializer):
    member = serializers.CharField(max_length=400, help_text="Member code or member QR token.")
    order_total = AmountField(help_text='CNY, e.g. "100.00".')
    points = AmountField(help_text="Brand points to hold.")
    order_ref = serializers.CharField(max_length=64, required=False, allow_blank=True)


class HoldCaptureInSerializer(serializers.Serializer):
    points = AmountField(required=False, help_text="Points to capture; all when left out.")


class HoldOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["pending", "captured", "voided", "expired"])
    member = serializers.CharField()
    asset = serializers.CharField()
    points = serializers.IntegerField()
    captured = serializers.IntegerField()
    cny_covered = serializers.DecimalField(max_digits=14, decimal_places=2)
    order_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    order_ref = serializers.CharField()
    expires_at = serializers.DateTimeField()


class HoldQuoteOutSerializer(serializers.Serializer):
    member = serializers.CharField()
    asset = serializers.CharField()
    order_total = serializers.DecimalField(max_digits=14, decimal_places=2)
    ratio = serializers.DecimalField(max_digits=5, decimal_places=4)
    balance = serializers.IntegerField()
    cap = serializers.IntegerField()
    max_points = serializers.IntegerField()
    cny_covered = serializers.DecimalField(max_digits=14, decimal_places=2)


def hold_body(deduction: CashDeduction) -> dict:
    hold = deduction.hold
    asset = hold.wallet.asset
    covered = hold.captured if hold.state == hold.State.CAPTURED else hold.amount
    return {
        "id": hold.pk, "state": hold.state, "member": deduction.shopper.member_code,
        "asset": asset.code, "points": _points(asset, hold.amount),
        "captured": _points(asset, hold.captured),
        "cny_covered": str(holds.cny_covered(asset, covered)),
        "order_total": str(deduction.order_total), "order_ref": deduction.order_ref,
        "expires_at": hold.expires_at.isoformat(),
    }


class HoldCreateApi(APIView):
    permission_classes = [HasApiKeyScope.to("holds")]

    @extend_schema(
        operation_id="holds_create", request=HoldInSerializer, parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: HoldOutSerializer, 200: HoldOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="member_not_found"),
                   409: OpenApiResponse(description="insufficient_balance / "
                                                    "idempotency_conflict"),
                   422: OpenApiResponse(description="deduction_cap_exceeded")},
        description="Hold a shopper's points to pay part of an order (积分抵扣). At most "
                    "max_deduction_ratio × order_total × points per CNY; the hold expires by "
                    "itself (15 minutes) unless captured or voided.",
    )
    def post(self, request):
        key = idempotency_key(request)
        payload = HoldInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        merchant = api_key_merchant(request)
        order_total = cny_parse(data["order_total"], field="order_total")
        asset = holds.brand_asset(merchant)
        points = amount_parse(data["points"], asset, field="points")
        shopper = member_resolve(data["member"])
        deduction = holds.deduction_hold(
            merchant=merchant, shopper=shopper, order_total=order_total, points=points,
            idempotency_key=key, order_ref=data.get("order_ref", ""),
        )
        return _created(hold_body(deduction), deduction)


class HoldQuoteApi(APIView):
    permission_classes = [HasApiKeyScope.to("holds")]

    @extend_schema(
        operation_id="holds_quote",
        parameters=[OpenApiParameter("member", str, required=True),
                    OpenApiParameter("order_total", str, required=True)],
        responses={200: HoldQuoteOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="member_not_found")},
        description="The most points the shopper can use for this order: the smaller of the "
                    "balance and the cap.",
    )
    def get(self, request):
        merchant = api_key_merchant(request)
        order_total = cny_parse(request.query_params.get("order_total"), field="order_total")
        shopper = member_resolve(request.query_params.get("member", ""))
        quote = holds.deduction_quote(merchant=merchant, shopper=shopper,
                                      order_total=order_total)
        asset = quote.asset
        return Response({
            "member": shopper.member_code, "asset": asset.code,
            "order_total": str(order_total), "ratio": str(quote.ratio),
            "balance": _points(asset, quote.balance), "cap": _points(asset, quote.cap),
            "max_points": _points(asset, quote.max_points),
            "cny_covered": str(quote.cny_covered),
        })


class HoldDetailApi(APIView):
    permission_classes = [HasApiKeyScope.to("holds")]

    @extend_schema(operation_id="holds_retrieve",
                   responses={200: HoldOutSerializer, 404: OpenApiResponse()})
    def get(self, request, hold_id: int):
        deduction = selectors.deduction_get(api_key_merchant(request), hold_id)
        if deduction is None:
            raise HoldNotFound(details={"hold": hold_id})
        return Response(hold_body(deduction))


class HoldCaptureApi(APIView):
    permission_classes = [HasApiKeyScope.to("holds")]

    @extend_schema(
        operation_id="holds_capture", request=HoldCaptureInSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: HoldOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="hold_not_found (or another merchant's)"),
                   409: OpenApiResponse(description="hold_not_pending / hold_expired")},
        description="Capture all or part of a pending hold: the captured points are retired "
                    "to the merchant's issuance, the rest returns to the shopper.",
    )
    def post(self, request, hold_id: int):
        key = idempotency_key(request)
        payload = HoldCaptureInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        merchant = api_key_merchant(request)
        points = None
        if payload.validated_data.get("points") not in (None, ""):
            points = amount_parse(payload.validated_data["points"], holds.brand_asset(merchant),
                                  field="points")
        deduction = holds.deduction_capture(merchant=merchant, hold_id=hold_id,
                                            idempotency_key=key, points=points)
        return Response(hold_body(deduction))


class HoldVoidApi(APIView):
    permission_classes = [HasApiKeyScope.to("holds")]

    @extend_schema(
        operation_id="holds_void", request=None, parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: HoldOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="hold_not_found (or another merchant's)"),
                   409: OpenApiResponse(description="hold_not_pending")},
        description="Give a pending hold back to the shopper whole.",
    )
    def post(self, request, hold_id: int):
        key = idempotency_key(request)
        deduction = holds.deduction_void(merchant=api_key_merchant(request), hold_id=hold_id,
                                         idempotency_key=key)
        return Response(hold_body(deduction))


# --- vouchers at the till (API key, scope "vouchers") ------------------------------------------


class VoucherOutSerializer(serializers.Serializer):
    code = serializers.CharField()
    state = serializers.CharField()
    item = serializers.IntegerField()
    item_name = serializers.CharField()
    source = serializers.CharField()
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    used_at = serializers.DateTimeField(allow_null=True)


def voucher_body(voucher: Voucher) -> dict:
    return {
        "code": voucher.display_code, "state": voucher.effective_state(),
        "item": voucher.item_id, "item_name": str(voucher.item), "source": voucher.source,
        "issued_at": voucher.issued_at.isoformat(), "expires_at": voucher.expires_at.isoformat(),
        "used_at": voucher.used_at.isoformat() if voucher.used_at else None,
    }


class MerchantVoucherApi(APIView):
    permission_classes = [HasApiKeyScope.to("vouchers")]

    @extend_schema(operation_id="vouchers_retrieve",
                   responses={200: VoucherOutSerializer, 404: OpenApiResponse()},
                   description="Look a voucher up before accepting it. Another merchant's "
                               "voucher is not found.")
    def get(self, request, code: str):
        voucher = selectors.merchant_voucher_get(api_key_merchant(request), code)
        if voucher is None:
            raise VoucherNotFound(details={"code": code[:40]})
        return Response(voucher_body(voucher))


class VoucherRedeemInSerializer(serializers.Serializer):
    store = serializers.IntegerField(required=False, min_value=1,
                                     help_text="The store whose till accepts it (optional).")


class VoucherRedeemApi(APIView):
    permission_classes = [HasApiKeyScope.to("vouchers")]

    @extend_schema(
        operation_id="vouchers_redeem", request=VoucherRedeemInSerializer,
        responses={200: VoucherOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="voucher_not_found (or another "
                                                    "merchant's) / store_not_found"),
                   409: OpenApiResponse(description="voucher_already_used / voucher_expired / "
                                                    "voucher_cancelled")},
        description="Accept a voucher at the till: once. A second validation is refused.",
    )
    def post(self, request, code: str):
        payload = VoucherRedeemInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        merchant = api_key_merchant(request)
        store = None
        if "store" in payload.validated_data:
            store = Store.objects.filter(pk=payload.validated_data["store"],
                                         merchant=merchant).first()
            if store is None:
                raise NotFound(details={"store": payload.validated_data["store"]},
                               code="store_not_found")
        voucher = catalog.voucher_validate(merchant=merchant, code=code,
                                           via=Voucher.Channel.API, store=store)
        return Response(voucher_body(voucher))


# --- shoppers (signed in) ----------------------------------------------------------------------

SHOPPER = [IsAuthenticated, HasAccess.to("storefront")]


class CappedPagination(LimitOffsetPagination):
    """An offset past any real list is an empty page, not a number the database refuses."""

    max_limit = 200

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), 10**9)


class CatalogItemOutSerializer(serializers.ModelSerializer):
    merchant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    price_asset = serializers.SlugRelatedField(slug_field="code", read_only=True)
    price = serializers.SerializerMethodField()
    affordable = serializers.SerializerMethodField()

    class Meta:
        model = CatalogItem
        fields = ["id", "merchant", "name_zh", "name_en", "description", "price_asset",
                  "price", "stock", "per_shopper_limit", "available_until", "refundable",
                  "affordable"]

    def get_price(self, item) -> str:
        return str(item.price_asset.to_major(item.price))

    def get_affordable(self, item) -> bool:
        return getattr(item, "shopper_balance", 0) >= item.price


class CatalogItemListApi(ListAPIView):
    permission_classes = SHOPPER
    serializer_class = CatalogItemOutSerializer
    pagination_class = CappedPagination

    @extend_schema(
        operation_id="catalog_items_list",
        parameters=[OpenApiParameter("q", str), OpenApiParameter("merchant", str),
                    OpenApiParameter("affordable", bool)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        return selectors.catalog_item_list(
            shopper=self.request.user, q=params.get("q", ""),
            merchant=params.get("merchant", ""),
            affordable=params.get("affordable", "").lower() in ("1", "true", "yes"),
        )


class CatalogRedeemApi(APIView):
    permission_classes = SHOPPER

    @extend_schema(
        operation_id="catalog_items_redeem", request=None, parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: VoucherOutSerializer, 200: VoucherOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="item_not_found"),
                   409: OpenApiResponse(description="out_of_stock / insufficient_balance / "
                                                    "redemption_limit_reached / "
                                                    "item_unavailable")},
        description="Redeem one unit of an item for a voucher: stock and points in one "
                    "transaction.",
    )
    def post(self, request, item_id: int):
        key = idempotency_key(request)
        voucher = catalog.catalog_redeem(shopper=request.user, item_id=item_id,
                                         idempotency_key=key)
        return _created(voucher_body(voucher), voucher)


class MyVoucherListApi(ListAPIView):
    permission_classes = SHOPPER
    serializer_class = VoucherOutSerializer
    queryset = Voucher.objects.none()
    pagination_class = CappedPagination

    @extend_schema(operation_id="me_vouchers_list")
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(selectors.shopper_voucher_list(request.user))
        return self.get_paginated_response([voucher_body(v) for v in page])


class MyVoucherCancelApi(APIView):
    permission_classes = SHOPPER

    @extend_schema(
        operation_id="me_vouchers_cancel", request=None,
        responses={200: VoucherOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="voucher_not_found (someone else's)"),
                   409: OpenApiResponse(description="voucher_not_refundable / "
                                                    "voucher_already_used / voucher_expired")},
        description="Cancel an unused voucher of a refundable item: the price comes back.",
    )
    def post(self, request, code: str):
        voucher = catalog.voucher_cancel(shopper=request.user, code=code)
        return Response(voucher_body(voucher))


class ExchangeInSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=16, help_text="Code of the points given (A).")
    target = serializers.CharField(max_length=16, help_text="Code of the points wanted (B).")
    amount = AmountField(help_text="Points of A to give.")
    expected_amount_out = AmountField(required=False,
                                      help_text="The quoted points of B; refused if changed.")


ASSET_CODE = re.compile(r"[A-Za-z0-9_]{1,16}")


def _exchange_assets(source_code: str, target_code: str) -> tuple[Asset, Asset]:
    codes = [code.upper() if ASSET_CODE.fullmatch(code or "") else "" for code in
             (source_code, target_code)]
    found = {a.code: a for a in Asset.objects.select_related("issuer").filter(
        code__in=[c for c in codes if c])}
    source, target = found.get(codes[0]), found.get(codes[1])
    if source is None or target is None:
        raise DomainError(code="asset_not_found", details={
            "source" if source is None else "target": "unknown point type"})
    return source, target


class ExchangeQuoteOutSerializer(serializers.Serializer):
    source = serializers.CharField()
    target = serializers.CharField()
    amount_in = serializers.IntegerField(help_text="Points of A given.")
    amount_out = serializers.IntegerField(help_text="Points of B received (rounded down).")
    value_in_cny = serializers.DecimalField(max_digits=20, decimal_places=6)
    value_out_cny = serializers.DecimalField(max_digits=20, decimal_places=6)
    rounding_cny = serializers.DecimalField(max_digits=20, decimal_places=6)
    settlement_shared = serializers.DecimalField(max_digits=20, decimal_places=2)
    reference_price = serializers.DecimalField(max_digits=12, decimal_places=4)


class ExchangeOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    target = serializers.CharField()
    amount_in = serializers.IntegerField()
    amount_out = serializers.IntegerField()
    value_in_cny = serializers.DecimalField(max_digits=20, decimal_places=6)
    value_out_cny = serializers.DecimalField(max_digits=20, decimal_places=6)
    settlement_shared = serializers.DecimalField(max_digits=20, decimal_places=2)
    transaction = serializers.IntegerField()


def quote_body(quote: exchange.ExchangeQuote) -> dict:
    return {
        "source": quote.source_asset.code, "target": quote.target_asset.code,
        "amount_in": _points(quote.source_asset, quote.amount_in),
        "amount_out": _points(quote.target_asset, quote.amount_out),
        "value_in_cny": str(quote.value_in_cny), "value_out_cny": str(quote.value_out_cny),
        "rounding_cny": str(quote.rounding_cny),
        "settlement_shared": str(quote.settlement_major),
        "reference_price": str(quote.reference_price),
    }


def exchange_body(done: Exchange) -> dict:
    return {
        "id": done.pk, "source": done.source_asset.code, "target": done.target_asset.code,
        "amount_in": _points(done.source_asset, done.amount_in),
        "amount_out": _points(done.target_asset, done.amount_out),
        "value_in_cny": str(done.value_in), "value_out_cny": str(done.value_out),
        "settlement_shared": str(alliance_asset("SHARED").to_major(done.settlement)),
        "transaction": done.transaction_id,
    }


class ExchangeQuoteApi(APIView):
    permission_classes = SHOPPER

    @extend_schema(
        operation_id="exchange_quote",
        parameters=[OpenApiParameter("source", str, required=True),
                    OpenApiParameter("target", str, required=True),
                    OpenApiParameter("amount", str, required=True)],
        responses={200: ExchangeQuoteOutSerializer, **_ERRORS},
        description="What an exchange would give, with the rounding it costs (under one "
                    "point of B).",
    )
    def get(self, request):
        params = request.query_params
        source, target = _exchange_assets(params.get("source", ""), params.get("target", ""))
        amount = amount_parse(params.get("amount"), source, field="amount")
        return Response(quote_body(exchange.exchange_quote(
            source_asset=source, target_asset=target, amount=amount)))


class ExchangeCreateApi(APIView):
    permission_classes = SHOPPER

    @extend_schema(
        operation_id="exchange_create", request=ExchangeInSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: ExchangeOutSerializer, 200: ExchangeOutSerializer, **_ERRORS,
                   409: OpenApiResponse(description="exchange_daily_cap_reached / "
                                                    "insufficient_balance / quote_changed")},
        description="Exchange merchant A's points for merchant B's at the published rates.",
    )
    def post(self, request):
        key = idempotency_key(request)
        payload = ExchangeInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        source, target = _exchange_assets(data["source"], data["target"])
        amount = amount_parse(data["amount"], source, field="amount")
        expected = None
        if data.get("expected_amount_out") not in (None, ""):
            expected = amount_parse(data["expected_amount_out"], target,
                                    field="expected_amount_out")
        done = exchange.exchange_execute(shopper=request.user, source_asset=source,
                                         target_asset=target, amount=amount,
                                         idempotency_key=key, expected_amount_out=expected)
        return _created(exchange_body(done), done)


class DrawOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField()
    shopper_ref = serializers.CharField(help_text="Pseudonymous id the draw is derived from.")
    nonce = serializers.IntegerField()
    digest = serializers.CharField(help_text="HMAC-SHA256(seed, campaign|shopper_ref|nonce).")
    ticket = serializers.IntegerField()
    tier = serializers.IntegerField()
    tier_label = serializers.CharField()
    outcome = serializers.ChoiceField(choices=LotteryDraw.Outcome.values)
    prize_points = serializers.IntegerField()
    coupon = serializers.CharField(allow_blank=True)
    voucher = serializers.CharField(allow_null=True)


def draw_body(draw: LotteryDraw) -> dict:
    return {
        "id": draw.pk, "campaign": draw.campaign_id, "shopper_ref": draw.shopper_ref,
        "nonce": draw.nonce, "digest": draw.digest, "ticket": draw.ticket,
        "tier": draw.drawn_tier.position, "tier_label": draw.drawn_tier.label,
        "outcome": draw.outcome, "prize_points": draw.prize_points,
        "coupon": draw.coupon_text,
        "voucher": draw.voucher.display_code if draw.voucher_id else None,
    }


class LotteryDrawApi(APIView):
    permission_classes = SHOPPER

    @extend_schema(
        operation_id="lotteries_draw", request=None, parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: DrawOutSerializer, 200: DrawOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="campaign_not_found"),
                   409: OpenApiResponse(description="campaign_not_open / "
                                                    "insufficient_balance")},
        description="Enter an open lottery once: the entry cost is charged and the draw "
                    "derived from the committed seed.",
    )
    def post(self, request, campaign_id: int):
        key = idempotency_key(request)
        draw = lottery.lottery_draw(shopper=request.user, campaign_id=campaign_id,
                                    idempotency_key=key)
        return _created(draw_body(draw), draw)


class TierOutSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    label = serializers.CharField()
    kind = serializers.CharField()
    weight = serializers.IntegerField()
    stock = serializers.IntegerField(allow_null=True)


class VerifiedDrawSerializer(serializers.Serializer):
    shopper_ref = serializers.CharField()
    nonce = serializers.IntegerField()
    digest = serializers.CharField()
    ticket = serializers.IntegerField()
    tier = serializers.IntegerField()
    outcome = serializers.CharField()
    recomputed_tier = serializers.IntegerField()
    matches = serializers.BooleanField()


class VerificationOutSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    state = serializers.CharField()
    commitment = serializers.CharField()
    seed = serializers.CharField(allow_null=True, help_text="Revealed when the campaign closes.")
    tiers = TierOutSerializer(many=True)
    verified = serializers.BooleanField(required=False)
    problems = serializers.ListField(child=serializers.CharField(), required=False)
    draws = VerifiedDrawSerializer(many=True, required=False)


class LotteryVerificationApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        operation_id="lotteries_verification",
        responses={200: VerificationOutSerializer, 404: OpenApiResponse()},
        description="Public: the commitment, and once the campaign is closed the revealed "
                    "seed with every draw recomputed from it.",
    )
    def get(self, request, campaign_id: int):
        campaign = selectors.lottery_get(campaign_id)
        if campaign is None:
            raise CampaignNotFound(details={"campaign": campaign_id})
        body = {"campaign": campaign.pk, "state": campaign.state,
                "commitment": campaign.commitment, "seed": campaign.revealed_seed or None,
                "tiers": [{"position": t.position, "label": t.label, "kind": t.kind,
                           "weight": t.weight, "stock": t.stock}
                          for t in campaign.tiers.order_by("position")]}
        if campaign.revealed_seed:
            report = lottery.lottery_verify(campaign=campaign)
            body["verified"] = report.ok
            body["problems"] = report.problems
            body["draws"] = [{"shopper_ref": c.draw.shopper_ref, "nonce": c.draw.nonce,
                              "digest": c.draw.digest, "ticket": c.draw.ticket,
                              "tier": c.draw.drawn_tier.position, "outcome": c.draw.outcome,
                              "recomputed_tier": c.tier_position, "matches": c.ok}
                             for c in report.checks]
        return Response(body)

