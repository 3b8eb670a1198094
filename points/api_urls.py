from django.urls import path

from . import apis

urlpatterns = [
    path("purchases", apis.PurchaseCreateApi.as_view(), name="purchase-create"),
    path("purchases/<int:purchase_id>", apis.PurchaseDetailApi.as_view(), name="purchase-detail"),
    path("purchases/<int:purchase_id>/refund", apis.PurchaseRefundApi.as_view(),
         name="purchase-refund"),
]
