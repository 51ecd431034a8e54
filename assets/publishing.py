"""What every stage asset does after its `ops` call: an MLflow run, Dagster metadata, the data version."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MetadataValue, Output

from ops.caching import StageOutput
from resources.mlflow_tracking import MlflowTracking

PREVIEW_ROWS = 10


def flatten_numbers(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"rows": {"items": 3}}`` -> ``{"rows/items": 3}``: numeric leaves only, for metrics and metadata.

    Characters MLflow refuses in metric names (anything but letters, digits, ``_-. /``) become ``_``.
    """
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = prefix + re.sub(r"[^\w\-. /]", "_", str(key))
        if isinstance(value, Mapping):
            flat.update(flatten_numbers(value, prefix=f"{name}/"))
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


def publish(
    context: AssetExecutionContext,
    tracking: MlflowTracking,
    output: StageOutput,
    params: Mapping[str, Any],
    preview: pl.DataFrame | None = None,
) -> Output[StageOutput]:
    """Log ``output`` as one MLflow run and return it as a Dagster `Output` whose data version is its fingerprint."""
    metrics = flatten_numbers(output.manifest)
    partition = context.partition_key if context.has_partition_key else "default"
    status = "cache hit" if output.cache_hit else "computed"
    with tracking.start_run(
        run_name=f"{output.stage}:{partition}",
        params={"partition": partition, **params},
        tags={
            "stage": output.stage,
            "fingerprint": output.fingerprint,
            "cache": status,
            "dagster_run_id": context.run_id,
        },
    ) as run:
        run.log_metrics(metrics)
    context.log.info(f"{output.stage} {partition}: {status}, version {output.fingerprint} at {output.path}")
    metadata: dict[str, Any] = {
        "cache": status,
        "fingerprint": output.fingerprint,
        "path": MetadataValue.path(output.path),
        "mlflow_run": MetadataValue.url(run.url),
        **{key: MetadataValue.float(value) if isinstance(value, float) else MetadataValue.int(value) for key, value in metrics.items()},
    }
    if preview is not None:
        metadata["preview"] = MetadataValue.md(markdown_table(preview.head(PREVIEW_ROWS)))
    return Output(output, data_version=DataVersion(output.fingerprint), metadata=metadata)
