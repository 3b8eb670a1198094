from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = _("Merchants")

    def ready(self) -> None:
        # signals connects the claim hooks to allauth's signals. webhook_tasks is not a
        # tasks.py, so a worker's autodiscovery missed it: a worker started with
        # `celery -A config worker` refused every webhook delivery as an unregistered task.
        from . import signals, webhook_tasks  # noqa: F401
