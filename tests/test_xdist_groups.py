"""The suite's ``xdist_group`` marks keep tests that share something outside the database on
one worker: the broker's queue (``real_broker``), the connection-heavy races, the drills
that cut every connection, the browser, a real Celery worker. ``make test`` runs with
``--dist loadgroup``; with pytest 9.2, pytest-xdist 3.8's grouping silently stopped
(pytest-xdist #1386) and two tests read one queue at once. This fails if it stops again."""

import pytest


@pytest.mark.xdist_group("broker")
def test_a_grouped_test_runs_in_its_group(request):
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("the suite is not distributed by group in this run")
    # pytest-xdist hands a grouped test to a worker by the group its node id names
    assert request.node.nodeid.endswith("@broker")
