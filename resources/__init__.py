"""Dagster resources: where data lives, and experiment tracking. Swappable in `pipelines/definitions.py` and tests."""

from resources.mlflow_tracking import MlflowTracking
from resources.storage import StorageResource

__all__ = ["MlflowTracking", "StorageResource"]
