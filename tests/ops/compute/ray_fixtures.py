"""Fixtures of one private 2-CPU Ray cluster for the whole test session (stopped at its end), for any test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.compute import Executor
from ops.compute.config import TEST_RAY_CONFIG


@pytest.fixture(scope="session")
def _ray_cluster() -> Iterator[Executor]:
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[scale]')")
    from ops.compute.ray_executor import RayExecutor

    running = RayExecutor(TEST_RAY_CONFIG)
    yield running
    running.close()


@pytest.fixture
def ray_executor(_ray_cluster: Executor, request: pytest.FixtureRequest) -> Executor:
    """The cluster's executor; the test module's own functions travel by value (workers cannot import tests)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(request.module)
    return _ray_cluster
