"""What every stage asset shares: an MLflow run around its `ops` call, then Dagster metadata and data version.

    with tracked_run(context, mlflow, "tokenizer", params) as run:
        output = ops_stage(..., callback=lambda log: run.log_metrics(..., step=log.epoch))
        return publish(context, run, output, preview)

The run is opened first, so per-epoch metrics stream into it while training, a failure marks it FAILED, and a
stage can record the run id in its manifest.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DataVersion,
    MetadataValue,
    Output,
    TableColumn,
    TableSchema,
)

from ops.caching import MANIFEST, StageOutput, existing_version
from resources.mlflow_tracking import DAGSTER_RUN_TAG, MlflowTracking, TrackedRun

PREVIEW_ROWS = 10


def flatten_numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"rows": {"items": 3}, "usage": [1.0, 0.9]}`` -> ``{"rows/items": 3, "usage/0": 1.0, "usage/1": 0.9}``.

    Numeric leaves only, for metrics and metadata; characters MLflow refuses in metric names (anything but
    letters, digits, ``_-. /``) become ``_``.
    """
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = prefix + re.sub(r"[^\w\-. /]", "_", str(key))
        if isinstance(value, Mapping):
            flat.update(flatten_numbers(value, prefix=f"{name}/"))
        elif isinstance(value, list | tuple):
            flat.update(flatten_numbers({str(i): item for i, item in enumerate(value)}, prefix=f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return flat


def markdown_table(frame: pl.DataFrame, max_chars: int = 60) -> str:
    """A Markdown table of ``frame`` for the Dagster UI, long cells cut to ``max_chars``."""

    def cell(value: Any) -> str:
        text = str(value).replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def partition_of(context: AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else "default"


def latest_fingerprint(context: AssetExecutionContext, key: AssetKey) -> str | None:
    """The stage version (``fingerprint`` metadata) of ``key``'s latest materialization for the run's partition."""
    partition = context.partition_key if context.has_partition_key else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("fingerprint")
    return None if value is None else str(value.value)


def previous_version(context: AssetExecutionContext, output_root: Path, stage: str) -> StageOutput | None:
    """The version this asset published last for the run's partition, if it is still stored: what re-indexing
    builds on (a frozen tokenizer, a table to append to)."""
    version = latest_fingerprint(context, context.asset_key)
    if version is None:
        return None
    try:
        return existing_version(output_root, stage, version)
    except (FileNotFoundError, ValueError):
        return None


def column_schemas(output: StageOutput) -> dict[str, Any]:
    """The columns of every Parquet file of a version, for the UI: ``columns: <file>`` per file, and the largest
    file's schema as ``dagster/column_schema`` (the one the asset page's Columns tab shows)."""
    files = sorted(Path(output.path).glob("*.parquet"), key=lambda path: (-path.stat().st_size, path.name))
    schemas = {
        path.name: TableSchema(
            columns=[TableColumn(name, str(dtype)) for name, dtype in pl.read_parquet_schema(path).items()]
        )
        for path in files
    }
    values: dict[str, Any] = {
        f"columns: {name}": MetadataValue.table_schema(schema) for name, schema in schemas.items()
    }
    if files:
        values["dagster/column_schema"] = schemas[files[0].name]
    return values


@contextmanager
def tracked_run(
    context: AssetExecutionContext,
    tracking: MlflowTracking,
    stage: str,
    params: Mapping[str, Any],
    tokenizer: str | None = None,
) -> Iterator[TrackedRun]:
    """One MLflow run in the stage's experiment, named ``<stage>:[<tokenizer>:]<data set>`` and tagged ``stage``,
    ``dataset``, ``tokenizer`` (the Semantic-ID family it made or read; "none" for an ID-only model) and the Dagster
    run id, so the MLflow UI filters by any of them."""
    partition = partition_of(context)
    tags = {"stage": stage, "dataset": partition, DAGSTER_RUN_TAG: context.run_id}
    if tokenizer is not None:
        tags["tokenizer"] = tokenizer
    name = ":".join(part for part in (stage, tokenizer, partition) if part is not None)
    with tracking.start_run(name, stage, params={"partition": partition, **params}, tags=tags) as run:
        yield run


def publish(
    context: AssetExecutionContext,
    run: TrackedRun,
    output: StageOutput,
    preview: pl.DataFrame | None = None,
    artifacts: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Output[StageOutput]:
    """Log ``output``'s manifest numbers to ``run`` and return it as a Dagster `Output` versioned by fingerprint.

    The manifest is always an artifact; the files named in ``artifacts`` (trained models, their histories, the
    table) only when this run computed them: a cache hit's run names the version (tag ``fingerprint``), and the
    run that built it holds the files.
    """
    metrics = flatten_numbers(output.manifest)
    status = "cache hit" if output.cache_hit else "computed"
    run.log_metrics(metrics)
    run.log_artifact(output.file(MANIFEST))
    if not output.cache_hit:
        for name in artifacts:
            run.log_artifact(output.file(name))
    run.set_tags({"fingerprint": output.fingerprint, "cache": status, "path": output.path})
    context.log.info(f"{output.stage} {partition_of(context)}: {status}, version {output.fingerprint} at {output.path}")
    values: dict[str, Any] = {
        "cache": status,
        "fingerprint": output.fingerprint,
        "path": MetadataValue.path(output.path),
        "mlflow_run": MetadataValue.url(run.url),
        **column_schemas(output),
        **(metadata or {}),
        **{
            key: MetadataValue.float(value) if isinstance(value, float) else MetadataValue.int(value)
            for key, value in metrics.items()
        },
    }
    if preview is not None:
        values["preview"] = MetadataValue.md(markdown_table(preview.head(PREVIEW_ROWS)))
    return Output(output, data_version=DataVersion(output.fingerprint), metadata=values)


# Per-epoch values grouped into the sections MLflow's chart view draws together (the part before the "/").
TRAIN_VALUES = ("loss", "reconstruction_loss", "quantization_loss", "lr", "samples")
SPEED_VALUES = ("seconds", "samples_per_s", "valid_seconds")
LEVEL_VALUES = {"usage": "codebook_usage", "perplexity": "codebook_perplexity"}


def curve_metrics(values: Mapping[str, Any]) -> dict[str, float]:
    """An epoch log as chart-ready metrics: ``train/…``, ``valid/…``, ``speed/…`` and, per codebook level,
    ``codebook_usage/level_1``…; the epoch itself is the step, not a curve.

    ``{"epoch": 3, "train_loss": 0.5, "valid_auc": 0.7, "usage": [0.9], "seconds": 2.0}`` ->
    ``{"train/loss": 0.5, "valid/auc": 0.7, "codebook_usage/level_1": 0.9, "speed/seconds": 2.0}``.
    """
    named: dict[str, float] = {}
    for key, value in flatten_numbers(values).items():
        section, _, rest = key.partition("/")
        if key == "epoch":
            continue
        if section in LEVEL_VALUES and rest.isdigit():
            key = f"{LEVEL_VALUES[section]}/level_{int(rest) + 1}"
        elif key in SPEED_VALUES:
            key = f"speed/{key}"
        elif key in TRAIN_VALUES:
            key = f"train/{key}"
        elif not rest and key.startswith(("train_", "valid_")):
            key = key.replace("_", "/", 1)
        named[key] = value
    return named
