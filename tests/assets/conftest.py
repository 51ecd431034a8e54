"""Resources pointing at temporary folders, so asset tests never touch the checkout's data/ or MLflow."""

from __future__ import annotations

import pytest

from resources import MlflowTracking, StorageResource
from resources.compute import ComputeResource
from resources.stage_io import StageOutputIOManager
from tests.conftest import shared_data_root


@pytest.fixture
def tmp_resources(tmp_path):
    """Real resources (SQLite MLflow, local storage, the stage IO manager) under ``tmp_path``; data root is the
    shared data."""
    return {
        "io_manager": StageOutputIOManager(output_root=str(tmp_path / "out")),
        "compute": ComputeResource(),
        "storage": StorageResource(data_root=str(shared_data_root()), output_root=str(tmp_path / "out")),
        "mlflow": MlflowTracking(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "artifacts")
        ),
    }
