"""Storage for uploads that no URL serves: licence images, member import files.

Pages stream them after checking access (``alliance.permissions``); ``MEDIA_URL`` never
reaches them, so a guessed or leaked path gives nothing away.
"""

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    """``PRIVATE_MEDIA_ROOT`` on the local disk (a shared volume when there are several web
    nodes), read from the settings on each use so tests can point it elsewhere."""

    @property
    def base_location(self) -> str:  # type: ignore[override]
        return str(settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self) -> str:  # type: ignore[override]
        return os.path.abspath(self.base_location)

    @property
    def base_url(self) -> None:  # type: ignore[override]
        return None


_private = PrivateStorage()


def private_storage() -> PrivateStorage:
    return _private
