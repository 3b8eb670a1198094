from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        # Not a tasks.py, so a worker's autodiscovery would miss it.
        from . import (
            purchase_tasks,  # noqa: F401
            signals,  # noqa: F401  (the sign-up bonus and sign-up counting)
        )
