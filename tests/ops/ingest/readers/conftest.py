"""Helpers shared by the reader tests: gzip copies of fixtures and a compact view of the reject log."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.ingest.rejects import RejectLog


@pytest.fixture
def gzipped(tmp_path: Path) -> Callable[..., Path]:
    """``gzipped(path, cut=False)``: a .gz copy of ``path`` in tmp_path, cut mid-stream when ``cut``."""

    def make(path: Path, cut: bool = False) -> Path:
        packed = gzip.compress(path.read_bytes())
        target = tmp_path / f"{path.name}.gz"
        target.write_bytes(packed[: len(packed) // 2] if cut else packed)
        return target

    return make


@pytest.fixture
def rejected() -> Callable[[RejectLog], list[tuple[str, int, str]]]:
    """``rejected(log)``: (file name, line, field) of every reject, in the order they were found."""

    def rows(log: RejectLog) -> list[tuple[str, int, str]]:
        return [(Path(file).name, line, field) for file, line, field, _, _ in log.to_frame().rows()]

    return rows
