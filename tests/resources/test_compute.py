"""The compute resource: local by default, ray on request with a private cluster it stops afterwards."""

from __future__ import annotations

import pytest

from ops.compute import ComputeMode, LocalExecutor
from resources.compute import ComputeResource


def test_default_is_local():
    resource = ComputeResource()
    assert resource.compute_config().mode == ComputeMode.LOCAL
    with resource.executor() as running:
        assert isinstance(running, LocalExecutor)


def test_ray_mode_starts_and_stops_a_private_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[scale]')")
    if ray.is_initialized():
        pytest.skip("another test of this session already holds a Ray cluster")
    with ComputeResource(mode="ray", workers=1).executor() as running:
        assert list(running.map(abs, [-1, 2, -3])) == [1, 2, 3]
        assert ray.cluster_resources()["CPU"] == 1
    assert not ray.is_initialized()
