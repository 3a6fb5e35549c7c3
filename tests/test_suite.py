"""How the suite runs itself: CI runs it on two pytest-xdist workers (`-n 2`), and the groups
conftest.py gives must reach xdist's scheduler, or tests that share a resource run at once."""
import os

import pytest


def test_the_xdist_group_reaches_the_scheduler(request):
    """xdist's loadgroup marks a grouped test by suffixing its node id with the group; pytest
    9.2 silently ignores that suffix (pytest-xdist issue 1386), hence requirements.txt's pin."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        pytest.skip("runs only under pytest-xdist (-n 2)")
    assert request.node.nodeid.endswith("@test_suite"), request.node.nodeid
