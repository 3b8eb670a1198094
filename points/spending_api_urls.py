"""``/api/v1/`` routes of spending (points.spending_apis)."""

from django.urls import path

from . import spending_apis as apis
from . import spending_urls  # noqa: F401 - registers the "dbid" path converter

urlpatterns = [
    # Merchant systems (API key).
    path("holds", apis.HoldCreateApi.as_view(), name="hold-create"),
    path("holds/quote", apis.HoldQuoteApi.as_view(), name="hold-quote"),
    path("holds/<dbid:hold_id>", apis.HoldDetailApi.as_view(), name="hold-detail"),
    path("holds/<dbid:hold_id>/capture", apis.HoldCaptureApi.as_view(), name="hold-capture"),
    path("holds/<dbid:hold_id>/void", apis.HoldVoidApi.as_view(), name="hold-void"),
    path("vouchers/<str:code>", apis.MerchantVoucherApi.as_view(), name="voucher-detail"),
    path("vouchers/<str:code>/redeem", apis.VoucherRedeemApi.as_view(), name="voucher-redeem"),
    # Shoppers (signed in).
    path("catalog/items", apis.CatalogItemListApi.as_view(), name="catalog-items"),
    path("catalog/items/<dbid:item_id>/redeem", apis.CatalogRedeemApi.as_view(),
         name="catalog-redeem"),
    path("me/vouchers", apis.MyVoucherListApi.as_view(), name="my-vouchers"),
    path("me/vouchers/<str:code>/cancel", apis.MyVoucherCancelApi.as_view(),
         name="my-voucher-cancel"),
    path("exchange/quote", apis.ExchangeQuoteApi.as_view(), name="exchange-quote"),
    path("exchange", apis.ExchangeCreateApi.as_view(), name="exchange-create"),
    path("lotteries/<dbid:campaign_id>/draws", apis.LotteryDrawApi.as_view(),
         name="lottery-draw"),
    # The public.
    path("lotteries/<dbid:campaign_id>/verification", apis.LotteryVerificationApi.as_view(),
         name="lottery-verification"),
]
