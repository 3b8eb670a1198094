"""The README's table of settings names every variable the settings read from the environment."""

import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db

SETTINGS_DIR = Path(settings.BASE_DIR) / "config" / "settings"
# env("NAME", ...), env.bool("NAME", ...), env.db("NAME"), os.environ.setdefault("NAME", ...)
READS = re.compile(
    r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|environ\.setdefault\(\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def _variables_read() -> set[str]:
    found: set[str] = set()
    for path in SETTINGS_DIR.glob("*.py"):
        for match in READS.finditer(path.read_text()):
            found.add(match.group(1) or match.group(2))
    return found


def _variables_documented() -> set[str]:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", readme, flags=re.MULTILINE))


def test_every_environment_setting_is_in_the_readme_table():
    # given the variables config/settings/*.py read
    read = _variables_read()
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= read

    # when the README's settings table is read
    documented = _variables_documented()

    # then none is missing from it
    assert read - documented == set()
