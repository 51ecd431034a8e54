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


def test_ray_mode_runs_on_ray_and_stops_only_a_cluster_it_started():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[scale]')")
    joined = ray.is_initialized()  # another test's cluster: joined and left running; else a private one
    with ComputeResource(mode="ray", workers=1).executor() as running:
        assert list(running.map(abs, [-1, 2, -3])) == [1, 2, 3]
        if not joined:
            assert ray.cluster_resources()["CPU"] == 1  # the private cluster has workers x cpus_per_worker CPUs
    assert ray.is_initialized() == joined
