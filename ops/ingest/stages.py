"""The ingestion stages as cached functions: normalize -> k-core -> splits.

Each takes its upstream handle (or the raw files), computes a fingerprint and either returns the cached version
or builds it with `caching.run_cached`. Dagster assets call exactly one of these.

Code versions: every stage hashes the shared ingest code (``ops/ingest/*.py`` except the registry modules);
`normalize` adds its data set's spec and the sources of its format's reader. So registering a data set, or editing
another format's reader, leaves every other data set's versions as they are.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from ops.caching import StageOutput, code_version, file_digest, fingerprint, run_cached
from ops.ingest.config import KCoreConfig, NormalizeConfig, SplitConfig
from ops.ingest.datasets import DatasetSpec
from ops.ingest.errors import IngestError
from ops.ingest.kcore import kcore_tables
from ops.ingest.normalize import Tables, build_tables
from ops.ingest.splits import leave_one_out, random_split
from ops.tables import read_parquet, write_parquet_atomic

INGEST_CODE = Path(__file__).resolve().parent
# Which data sets exist and which reader each uses (hashed as the spec instead), and the sensor's file watching:
# none of them computes a table.
NOT_STAGE_CODE = ("datasets.py", "formats.py", "raw_files.py")
SHARED_CODE = tuple(sorted(path for path in INGEST_CODE.glob("*.py") if path.name not in NOT_STAGE_CODE))
TABLE_NAMES = ("items", "users", "interactions", "rejects", "impressions")


def write_tables(tables: Tables, folder: Path) -> dict[str, int]:
    """Write every table as Parquet; returns the row count of each."""
    counts = {}
    for name, frame in tables.frames().items():
        write_parquet_atomic(frame, folder / f"{name}.parquet")
        counts[name] = frame.height
    return counts


def read_tables(stage: StageOutput) -> Tables:
    frames = {
        name: read_parquet(stage.file(f"{name}.parquet"))
        for name in TABLE_NAMES
        if stage.file(f"{name}.parquet").exists()
    }
    return Tables(**frames)


def table_stats(tables: Tables) -> dict[str, Any]:
    """Counts a user checks first: sizes, reject count, text coverage."""
    items = tables.items
    return {
        "rows": {name: frame.height for name, frame in tables.frames().items()},
        "items_with_title": items.filter(pl.col("title").str.strip_chars().str.len_chars() > 0).height,
        "textless_items": items.filter(~pl.col("has_text")).height,
        "rejected_rows": tables.rejects.height,
    }


def normalize(spec: DatasetSpec, data_root: Path, output_root: Path, config: NormalizeConfig) -> StageOutput:
    """Read one data set's raw files into the normalized tables (cached on file contents + config + code)."""
    paths = spec.paths(data_root)
    for role, path in paths.items():
        if not path.is_file():
            raise IngestError(
                path, f"input file of {spec.name!r} ({spec.where(role)}) not found under data root {data_root}"
            )
    inputs = {role: file_digest(path) for role, path in sorted(paths.items())}
    stage_fingerprint = fingerprint(
        {
            "dataset": spec.identity,
            "inputs": inputs,
            "config": asdict(config),
            "code": code_version(*SHARED_CODE, *spec.format.sources),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        result = spec.read(data_root)
        _check_parsed_bytes(paths, inputs, result.rejects.digests)
        try:
            result.rejects.check(config.max_reject_fraction)
        except IngestError as error:
            kept = output_root / "rejects" / f"{spec.name}-{stage_fingerprint}.parquet"
            write_parquet_atomic(result.rejects.to_frame(), kept)
            raise IngestError(
                error.file, f"{error.reason}; rejected rows kept in {kept}", line=error.line, field=error.field
            ) from error
        tables = build_tables(result)
        write_tables(tables, folder)
        return {
            "dataset": spec.name,
            "inputs": {role: str(path) for role, path in paths.items()},
            "counters": result.counters,
            "rows_read": {Path(file).name: n for file, n in sorted(result.rejects.rows_read.items())},
            **table_stats(tables),
        }

    return run_cached(output_root, "normalized", stage_fingerprint, build)


def _check_parsed_bytes(paths: dict[str, Path], inputs: dict[str, str], parsed: dict[str, str]) -> None:
    """Fail unless the reader parsed exactly the bytes the fingerprint was computed from.

    A file replaced between hashing and reading would otherwise be cached under the old file's hash.
    """
    for role, path in paths.items():
        digest = parsed.get(str(path))
        if digest is None:
            raise IngestError(path, f"the reader did not read this {role} file through `lines.read_bytes`")
        if digest != inputs[role]:
            raise IngestError(
                path,
                f"the file changed while it was read (sha256 {inputs[role][:12]} hashed, {digest[:12]} parsed); re-run",
            )


def kcore(upstream: StageOutput, output_root: Path, config: KCoreConfig) -> StageOutput:
    """The iterative k-core of a normalized data set, applied to every table (impressions included)."""
    stage_fingerprint = fingerprint(
        {"upstream": upstream.fingerprint, "config": asdict(config), "code": code_version(*SHARED_CODE)}
    )

    def build(folder: Path) -> dict[str, Any]:
        before = read_tables(upstream)
        tables, rounds = kcore_tables(before, config.k)
        write_tables(tables, folder)
        dropped = {
            name: before.frames()[name].height - frame.height
            for name, frame in tables.frames().items()
            if name != "rejects"
        }
        return {
            "dataset": upstream.manifest.get("dataset"),
            "k": config.k,
            "rounds": rounds,
            "dropped": dropped,
            **table_stats(tables),
        }

    return run_cached(output_root, "kcore", stage_fingerprint, build)


def splits(upstream: StageOutput, output_root: Path, config: SplitConfig) -> StageOutput:
    """Leave-one-out and random splits of a k-core, each one table with a ``split`` column.

    Splits read only the interactions, so they are fingerprinted by those bytes (not by the whole k-core version):
    an edit of item text makes a new k-core but finds these splits cached.
    """
    interactions_digest = file_digest(upstream.file("interactions.parquet"))
    stage_fingerprint = fingerprint(
        {
            "dataset": upstream.manifest.get("dataset"),
            "interactions": interactions_digest,
            "config": asdict(config),
            "code": code_version(*SHARED_CODE),
        }
    )
    fractions = (config.train_fraction, config.valid_fraction, config.test_fraction)

    def build(folder: Path) -> dict[str, Any]:
        interactions = read_parquet(upstream.file("interactions.parquet"))
        counts: dict[str, dict[str, int]] = {}
        for name, table in (
            ("leave_one_out", leave_one_out(interactions)),
            ("random", random_split(interactions, config.seed, fractions)),
        ):
            write_parquet_atomic(table, folder / f"{name}.parquet")
            counts[name] = {row["split"]: row["len"] for row in table.group_by("split").len().iter_rows(named=True)}
        return {
            "dataset": upstream.manifest.get("dataset"),
            "interactions_sha256": interactions_digest,
            "seed": config.seed,
            "splits": counts,
        }

    return run_cached(output_root, "splits", stage_fingerprint, build)
