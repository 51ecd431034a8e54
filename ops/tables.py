"""File I/O shared by every stage: atomic replacement, and Parquet with deterministic bytes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

COMPRESSION = "zstd"


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` then rename onto ``path``: readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text))


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Identical frames give identical bytes (fixed compression, no timestamps in the file)."""
    write_atomic(path, lambda temporary: frame.write_parquet(temporary, compression=COMPRESSION, statistics=True))


def read_parquet(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path)
