from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = _("Merchants")

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the claim hooks to allauth's signals)
