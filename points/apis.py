"""Purchases over the API, for merchants' tills and e-shops (SPEC §4.1, §7)."""

import json
import re
from decimal import Decimal

from django.conf import settings
from django.http.request import RawPostDataException
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from alliance.idempotency import HEADER as IDEMPOTENCY_HEADER
from alliance.idempotency import IDEMPOTENCY_PARAMETER, idempotency_key, request_fingerprint
from alliance.idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from ledger.services import alliance_asset
from merchants.api_auth import HasApiKeyScope, api_key_merchant

from . import services
from .members import MemberNotFound, MemberTokenExpired, member_code_parse
from .models import Purchase
from .purchase_engine import purchase_context_keyed

MAX_CNY = Decimal("1000000000")


class LineSerializer(serializers.Serializer):
    category = serializers.CharField(max_length=60)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)


class PurchaseInSerializer(serializers.Serializer):
    member = serializers.CharField(max_length=400, help_text="Member code or member QR token.")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
                                      max_value=MAX_CNY, help_text="CNY, e.g. \"1000.00\".")
    order_ref = serializers.CharField(max_length=100)
    store = serializers.IntegerField(required=False, min_value=1)
    lines = LineSerializer(many=True, required=False, max_length=200)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="For a till that was offline: when it happened (≤ 72 h ago).")


class RefundInSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), max_value=MAX_CNY,
        required=False, help_text="CNY to refund; the whole remainder when left out.")
    absorb_shortfall = serializers.BooleanField(
        default=False, help_text="The merchant absorbs points the shopper has already spent.")


class PurchaseOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    transaction = serializers.IntegerField()
    points = inline_serializer("PurchasePoints", {"asset": serializers.CharField(),
                                                  "amount": serializers.IntegerField()})
    share_value = inline_serializer("PurchaseShareValue", {
        "shopper": serializers.DecimalField(max_digits=20, decimal_places=2),
        "merchant": serializers.DecimalField(max_digits=20, decimal_places=2)})
    deposit_burned = serializers.DecimalField(max_digits=20, decimal_places=2)
    rebate = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded = serializers.DecimalField(max_digits=12, decimal_places=2)
    receipt = serializers.CharField()


class RefundOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    purchase = serializers.IntegerField()
    transaction = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    points = serializers.IntegerField()
    shortfall_points = serializers.IntegerField()
    receipt = serializers.CharField()


def _receipt_url(request, transaction_id: int) -> str:
    return request.build_absolute_uri(f"/api/v1/transactions/{transaction_id}/receipt")


def purchase_body(request, purchase: Purchase,
                  assets: services.PurchaseAssets | None = None) -> dict:
    """The purchase as the API answers it; ``assets`` (``services.purchase_assets`` of its
    merchant) saves looking them up again."""
    if assets is None:
        brand, sv, shared = (services.brand_asset(purchase.merchant), alliance_asset("SV"),
                             alliance_asset("SHARED"))
    else:
        brand, sv, shared = assets.brand, assets.sv, assets.shared
    return {
        "id": purchase.pk,
        "transaction": purchase.transaction_id,
        "points": {"asset": brand.code,
                   "amount": purchase.points},
        "share_value": {"shopper": str(sv.to_major(purchase.sv_shopper)),
                        "merchant": str(sv.to_major(purchase.sv_merchant))},
        "deposit_burned": str(shared.to_major(purchase.shared_burned)),
        "rebate": f"{purchase.rebate:.2f}",
        "refunded": f"{purchase.refunded_amount:.2f}",
        "receipt": _receipt_url(request, purchase.transaction_id),
    }


# A plain amount as tills send it: no sign, no exponent, no leading zero, at most two decimals.
_PLAIN_AMOUNT = re.compile(r"^(?:0|[1-9][0-9]{0,9})(?:\.[0-9]{1,2})?$")
_CENT = Decimal("0.01")
_PLAIN_FIELDS = frozenset({"member", "amount", "order_ref", "store"})


def _plain_text(value, max_length: int) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= max_length and value.isprintable()
            and value == value.strip())


def purchase_input_plain(data) -> dict | None:
    """``PurchaseInSerializer``'s validated data for the common request (member, amount as a
    plain string, order reference, maybe a store id), checked by hand: DRF's field machinery
    cost a tenth of a purchase. Anything else (lines, occurred_at, other forms of a valid
    value, and every invalid one) answers None, and the serializer decides, with its error
    messages. Accepts only what the serializer accepts, and gives what it would."""
    if not isinstance(data, dict) or not data.keys() <= _PLAIN_FIELDS:
        return None
    member, amount, order_ref = data.get("member"), data.get("amount"), data.get("order_ref")
    if not (_plain_text(member, 400) and _plain_text(order_ref, 100)
            and isinstance(amount, str) and _PLAIN_AMOUNT.match(amount)):
        return None
    value = Decimal(amount).quantize(_CENT)
    if not _CENT <= value <= MAX_CNY:
        return None
    plain = {"member": member, "amount": value, "order_ref": order_ref}
    if "store" in data:
        store = data["store"]
        if type(store) is not int or not 0 < store < 2**63:
            return None
        plain["store"] = store
    return plain


_ERRORS = {
    400: OpenApiResponse(description="Invalid input (error shape, `details` names the field)"),
    401: OpenApiResponse(description="No, unknown or revoked API key"),
    403: OpenApiResponse(description="The key lacks the purchases scope"),
}


class PurchaseCreateApi(APIView):
    permission_classes = [HasApiKeyScope.to("purchases")]

    def api_key_fetch(self, request):
        """The key check reads the purchase's context in the same statement
        (``purchase_engine.purchase_context_keyed``): a round trip to the database fewer per
        purchase, which counts most where the database is another machine. Only for the
        common request (``purchase_input_plain``) with a well-formed Idempotency-Key and
        member code; otherwise, and on the SQLite demo, the plain key check. The key is
        checked as for any request, and the context is read only for a key that may record
        purchases (``merchants.api_auth.ApiKeyAuthentication``). The body read here is the
        view's too: DRF's parsing it again cost a tenth of the purchase's Python."""
        if not services.purchase_engine_sql() or request.method != "POST":
            return None
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        django_request = request._request
        # Only a body DRF would hand to its JSON parser (by the media type alone).
        if (not IDEMPOTENCY_KEY_PATTERN.match(key)
                or django_request.content_type != JSONParser.media_type):
            return None
        try:
            # Django's copy of the body, decoded as DRF's JSON parser decodes it; anything
            # that parser might answer otherwise is left to it (the view's own errors).
            body = json.loads(django_request.body.decode(
                django_request.encoding or settings.DEFAULT_CHARSET))
            data = purchase_input_plain(body)
            member = member_code_parse(data["member"]) if data else None
        except (ValueError, LookupError, RawPostDataException, MemberNotFound,
                MemberTokenExpired):
            return None
        if member is None:
            return None
        # The view uses the body as read here rather than have DRF parse it again.
        request.purchase_body_read = (body, data)

        def fetch(prefix: str, hashed: str):
            api_key, asked, context = purchase_context_keyed(
                prefix=prefix, hashed=hashed, member_code=member, key=key,
                store_id=data.get("store"), amount=data["amount"], at=timezone.now())
            if context is not None:
                request.purchase_read_ahead = (asked, context)
            return api_key

        return fetch

    @extend_schema(
        operation_id="purchases_create", request=PurchaseInSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: PurchaseOutSerializer, 200: PurchaseOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="member_not_found / store_not_found"),
                   409: OpenApiResponse(description="deposit_insufficient / "
                                                    "idempotency_conflict")},
        description="Record a shared purchase (SPEC §4.1): brand points by the earning rules, "
                    "share value to the shopper (10R) and the merchant (2R), R SHARED burned "
                    "from the deposit. A repeat with the same Idempotency-Key answers 200 with "
                    "the original purchase.",
    )
    def post(self, request):
        key = idempotency_key(request)
        body, data = getattr(request, "purchase_body_read", (None, None))
        if data is None:
            body = request.data
            data = purchase_input_plain(body)
        if data is None:
            payload = PurchaseInSerializer(data=body)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
        purchase, replayed, assets = services.purchase_record_for_member(
            merchant=api_key_merchant(request), member=data["member"], amount=data["amount"],
            order_ref=data["order_ref"], idempotency_key=key,
            fingerprint=request_fingerprint(request.path, body),
            store_id=data.get("store"), lines=[dict(line, amount=str(line["amount"]))
                                               for line in data.get("lines", [])],
            occurred_at=data.get("occurred_at"),
            read_ahead=getattr(request, "purchase_read_ahead", None),
        )
        response = Response(purchase_body(request, purchase, assets),
                            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class PurchaseDetailApi(APIView):
    permission_classes = [HasApiKeyScope.to("purchases")]

    @extend_schema(operation_id="purchases_retrieve",
                   responses={200: PurchaseOutSerializer, 404: OpenApiResponse()})
    def get(self, request, purchase_id: int):
        purchase = get_object_or_404(Purchase, pk=purchase_id,
                                     merchant=api_key_merchant(request))
        return Response(purchase_body(request, purchase))


class PurchaseRefundApi(APIView):
    permission_classes = [HasApiKeyScope.to("purchases")]

    @extend_schema(
        operation_id="purchases_refund", request=RefundInSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: RefundOutSerializer, 200: RefundOutSerializer, **_ERRORS,
                   404: OpenApiResponse(description="Not this merchant's purchase"),
                   409: OpenApiResponse(description="points_already_spent")},
        description="Refund a purchase wholly or in part: points, share value and the burn "
                    "are reversed in proportion.",
    )
    def post(self, request, purchase_id: int):
        key = idempotency_key(request)
        purchase = get_object_or_404(Purchase, pk=purchase_id,
                                     merchant=api_key_merchant(request))
        payload = RefundInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        refund, replayed = services.purchase_refund(
            purchase=purchase, amount=payload.validated_data.get("amount"),
            idempotency_key=key,
            absorb_shortfall=payload.validated_data["absorb_shortfall"],
        )
        body = {"id": refund.pk, "purchase": purchase.pk, "transaction": refund.transaction_id,
                "amount": str(refund.amount), "points": refund.points,
                "shortfall_points": refund.shortfall_points,
                "receipt": _receipt_url(request, refund.transaction_id)}
        return Response(body, status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED)


