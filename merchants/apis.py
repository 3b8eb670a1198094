"""API endpoints for merchant systems, signed with an API key (``merchants.api_auth``).

They answer for the key's own merchant only: there is no id in the path to try another's.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.services import alliance_asset

from .api_auth import HasApiKey, HasApiKeyScope, api_key_merchant
from .services import deposit_status


class ApiKeyInfoSerializer(serializers.Serializer):
    merchant = serializers.SlugField(help_text="The slug of the key's merchant.")
    merchant_status = serializers.CharField()
    key_prefix = serializers.CharField(help_text="The public part of the key.")
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class ApiKeyInfoApi(APIView):
    """``GET /api/v1/merchant/key``: which merchant and scopes the calling key has; a till
    checks its configuration with it."""

    permission_classes = [HasApiKey]

    @extend_schema(responses=ApiKeyInfoSerializer, summary="The calling API key")
    def get(self, request: Request) -> Response:
        api_key = request.auth
        merchant = api_key_merchant(request)
        return Response(ApiKeyInfoSerializer({
            "merchant": merchant.slug, "merchant_status": merchant.status,
            "key_prefix": api_key.prefix, "name": api_key.name, "scopes": api_key.scopes,
        }).data)


class DepositSerializer(serializers.Serializer):
    balance = serializers.CharField(help_text="SHARED in the deposit (decimal string).")
    minimum = serializers.CharField()
    warning = serializers.CharField()
    level = serializers.ChoiceField(choices=["ok", "warning", "below_minimum"])
    balance_minor = serializers.IntegerField(help_text="The same balance in minor units.")


class DepositApi(APIView):
    """``GET /api/v1/merchant/deposit``: the merchant's deposit against the alliance's levels;
    below the minimum, purchases that need a rebate burn are refused."""

    permission_classes = [HasApiKeyScope.to("purchases")]

    @extend_schema(responses=DepositSerializer, summary="The merchant's deposit")
    def get(self, request: Request) -> Response:
        shared = alliance_asset("SHARED")
        status = deposit_status(api_key_merchant(request))
        return Response(DepositSerializer({
            "balance": str(shared.to_major(status.balance)),
            "minimum": str(shared.to_major(status.minimum)),
            "warning": str(shared.to_major(status.warning)),
            "level": status.level, "balance_minor": status.balance,
        }).data)
