"""Shared fixtures: where the real data lives, and skipping with a clear reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def shared_data_root() -> Path:
    """``SEMID_DATA_ROOT`` if set, else ``../shared/data`` beside the checkout (as CI lays it out)."""
    return Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture
def shared_data():
    """Return a function mapping a data-set folder name to its path, skipping the test when it is absent."""

    def folder(name: str) -> Path:
        path = shared_data_root() / name
        if not path.is_dir():
            pytest.skip(f"real data folder {path} is absent (set SEMID_DATA_ROOT or place ../shared/data)")
        return path

    return folder


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
