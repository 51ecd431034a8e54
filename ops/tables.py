"""Parquet I/O shared by every stage: deterministic bytes, atomic replacement."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl

COMPRESSION = "zstd"


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` via a temporary file + rename; identical frames give identical bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.write_parquet(temporary, compression=COMPRESSION, statistics=True)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_parquet(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)
