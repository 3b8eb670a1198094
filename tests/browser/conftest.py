"""Playwright with Debian's Chromium: Playwright cannot download its own browser here
(STACK.md), so the launch points at /usr/bin/chromium."""

import pytest


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "headless": True,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "en-US", "accept_downloads": True}


@pytest.fixture(autouse=True)
def _alliance_assets(django_db_blocker):
    """SHARED, SV and ALLY, as ledger's data migration makes them: the transactional test
    that ran before flushed them with everything else."""
    from tests.points.spending_helpers import alliance_assets_restore

    with django_db_blocker.unblock():
        alliance_assets_restore()
