"""The ledger in the Django admin: read-only, for superusers looking into the database.

The journal, balances, lots and the log change only through ``ledger.services`` and
``ledger.log_services``, so no admin page may add, change or delete them. The one action
here, approving or revoking a witness key, calls the service that guards it.
"""

import base64

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError

from . import log_services
from .models import (
    Account,
    Asset,
    Checkpoint,
    Cosignature,
    Hold,
    LogLeaf,
    Lot,
    Posting,
    Transaction,
    WitnessKey,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: no add, change or delete, whatever the user's permissions."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = ["code", "family", "name_zh", "name_en", "issuer", "scale", "units_per_cny",
                    "expiry_months", "transferable"]
    list_filter = ["family", "transferable"]
    search_fields = ["code", "name_zh", "name_en"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "asset", "kind", "holder_key", "bounded", "balance", "created_at"]
    list_filter = ["kind", "bounded", "asset"]
    search_fields = ["public_id", "holder_key"]
    list_select_related = ["asset"]


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ["leg", "account", "asset", "amount", "expires_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ["pk", "kind", "client", "idempotency_key", "occurred_at", "created_at",
                    "log_index"]
    list_filter = ["kind"]
    search_fields = ["=pk", "client", "idempotency_key"]
    date_hierarchy = "created_at"
    inlines = [PostingInline]
    list_select_related = ["log_leaf"]

    @admin.display(description=_("log index"))
    def log_index(self, obj: Transaction):
        leaf = getattr(obj, "log_leaf", None)
        return leaf.index if leaf else None


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["transaction", "leg", "account", "asset", "amount", "expires_at"]
    list_filter = ["asset"]
    search_fields = ["=transaction__pk", "account__public_id"]
    list_select_related = ["transaction", "account", "asset"]


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["account", "expires_at", "remaining"]
    search_fields = ["account__public_id"]
    list_select_related = ["account__asset"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["pk", "wallet", "amount", "captured", "state", "expires_at", "created_at"]
    list_filter = ["state"]
    list_select_related = ["wallet__asset"]


@admin.register(LogLeaf)
class LogLeafAdmin(ReadOnlyAdmin):
    list_display = ["index", "transaction", "hash_hex"]
    search_fields = ["=index", "=transaction__pk"]

    @admin.display(description=_("leaf hash"))
    def hash_hex(self, obj: LogLeaf) -> str:
        return bytes(obj.leaf_hash).hex()


class CosignatureInline(admin.TabularInline):
    model = Cosignature
    fields = ["witness", "timestamp", "line"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["size", "root", "created_at"]
    fields = ["size", "root", "note", "supply", "horizon", "created_at"]
    readonly_fields = fields
    inlines = [CosignatureInline]

    @admin.display(description=_("root hash"))
    def root(self, obj: Checkpoint) -> str:
        return base64.b64encode(bytes(obj.root_hash)).decode("ascii")


@admin.register(WitnessKey)
class WitnessKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "key_hex", "status", "merchant", "user", "created_at", "decided_at"]
    list_filter = ["status"]
    search_fields = ["name", "vkey"]
    actions = ["approve", "revoke"]

    @admin.display(description=_("key id"))
    def key_hex(self, obj: WitnessKey) -> str:
        return f"{obj.key_id:08x}"

    def _decide(self, request, queryset, service) -> None:
        for key in queryset:
            try:
                service(witness_key=key, by=request.user)
            except DomainError as exc:
                self.message_user(request, f"{key}: {exc.message}", messages.ERROR)

    @admin.action(description=_("Approve the selected witness keys"))
    def approve(self, request, queryset) -> None:
        self._decide(request, queryset, log_services.witness_key_approve)

    @admin.action(description=_("Revoke the selected witness keys"))
    def revoke(self, request, queryset) -> None:
        self._decide(request, queryset, log_services.witness_key_revoke)
