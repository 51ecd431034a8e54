"""The Ray cluster fixtures for this folder (`ray_fixtures`)."""

from tests.ops.compute.ray_fixtures import _ray_cluster, ray_executor  # noqa: F401
