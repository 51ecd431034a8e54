"""Where raw inputs are read from and where stage outputs are written."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT_ENV = "SEMID_DATA_ROOT"
OUTPUT_ROOT_ENV = "SEMID_OUTPUT_ROOT"


def default_data_root() -> str:
    """``$SEMID_DATA_ROOT``, else the ``shared/data`` folder beside the checkout (the layout CI uses)."""
    return os.environ.get(DATA_ROOT_ENV, str(REPO_ROOT.parent / "shared" / "data"))


def default_output_root() -> str:
    """``$SEMID_OUTPUT_ROOT``, else ``data/`` inside the checkout (git-ignored)."""
    return os.environ.get(OUTPUT_ROOT_ENV, str(REPO_ROOT / "data"))


class StorageResource(ConfigurableResource):
    """Paths of the raw data sets (read-only) and of the versioned stage outputs."""

    data_root: str = Field(
        description="Folder holding one sub-folder per raw data set; each data set's YAML (datasets/*.yaml, "
        "$SEMID_DATASETS) names its folder and files relative to it."
    )
    output_root: str = Field(description="Folder where every stage writes its content-addressed versions.")

    @property
    def data_path(self) -> Path:
        return Path(self.data_root).expanduser().resolve()

    @property
    def output_path(self) -> Path:
        path = Path(self.output_root).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
