"""``/api/v1/log/...`` and the receipt endpoint, included by ``config/api_urls.py``.

The log paths are a public contract: outside witnesses and auditors call them.
"""

from django.urls import path

from . import apis

urlpatterns = [
    path("log/key", apis.LogKeyApi.as_view(), name="log-key"),
    path("log/checkpoint", apis.CheckpointLatestApi.as_view(), name="log-checkpoint"),
    path("log/checkpoints", apis.CheckpointListApi.as_view(), name="log-checkpoints"),
    path("log/checkpoints/<int:size>", apis.CheckpointApi.as_view(), name="log-checkpoint-size"),
    path("log/proof/inclusion", apis.InclusionProofApi.as_view(), name="log-proof-inclusion"),
    path("log/proof/consistency", apis.ConsistencyProofApi.as_view(),
         name="log-proof-consistency"),
    path("log/cosignatures", apis.CosignatureApi.as_view(), name="log-cosignatures"),
    path("log/witnesses", apis.WitnessKeyListApi.as_view(), name="log-witnesses"),
    path("log/witnesses/<int:pk>/approve",
         apis.WitnessKeyDecisionApi.as_view(decision="approve"), name="log-witness-approve"),
    path("log/witnesses/<int:pk>/revoke",
         apis.WitnessKeyDecisionApi.as_view(decision="revoke"), name="log-witness-revoke"),
    path("transactions/<int:pk>/receipt", apis.ReceiptApi.as_view(), name="transaction-receipt"),
]
