"""What every stage asset shares: an MLflow run around its `ops` call, then Dagster metadata and data version.

    with tracked_run(context, mlflow, "tokenizer", params) as run:
        output = ops_stage(..., callback=lambda log: run.log_metrics(..., step=log.epoch))
        return publish(context, run, output, preview)

The run is opened first, so per-epoch metrics stream into it while training, a failure marks it FAILED, and a
stage can record the run id in its manifest.
"""

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MetadataValue, Output

from ops.caching import MANIFEST, StageOutput, existing_version
from resources.mlflow_tracking import MlflowTracking, TrackedRun

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


def pinned_or_upstream(output_root: Any, stage: str, version: str, upstream: StageOutput) -> StageOutput:
    """The stored ``version`` of ``stage`` when config pins one (a fingerprint), else the upstream asset's value."""
    return existing_version(output_root, stage, version) if version else upstream


def partition_of(context: AssetExecutionContext) -> str:
    return context.partition_key if context.has_partition_key else "default"


@contextmanager
def tracked_run(
    context: AssetExecutionContext, tracking: MlflowTracking, stage: str, params: Mapping[str, Any]
) -> Iterator[TrackedRun]:
    """One MLflow run named ``<stage>:<partition>`` with ``params``, tagged with the Dagster run id."""
    partition = partition_of(context)
    with tracking.start_run(
        run_name=f"{stage}:{partition}",
        params={"partition": partition, **params},
        tags={"stage": stage, "dagster_run_id": context.run_id},
    ) as run:
        yield run


def publish(
    context: AssetExecutionContext,
    run: TrackedRun,
    output: StageOutput,
    preview: pl.DataFrame | None = None,
) -> Output[StageOutput]:
    """Log ``output``'s manifest numbers to ``run`` and return it as a Dagster `Output` versioned by fingerprint."""
    metrics = flatten_numbers(output.manifest)
    status = "cache hit" if output.cache_hit else "computed"
    run.log_metrics(metrics)
    run.log_artifact(output.file(MANIFEST))
    run.set_tags({"fingerprint": output.fingerprint, "cache": status, "path": output.path})
    context.log.info(f"{output.stage} {partition_of(context)}: {status}, version {output.fingerprint} at {output.path}")
    metadata: dict[str, Any] = {
        "cache": status,
        "fingerprint": output.fingerprint,
        "path": MetadataValue.path(output.path),
        "mlflow_run": MetadataValue.url(run.url),
        **{
            key: MetadataValue.float(value) if isinstance(value, float) else MetadataValue.int(value)
            for key, value in metrics.items()
        },
    }
    if preview is not None:
        metadata["preview"] = MetadataValue.md(markdown_table(preview.head(PREVIEW_ROWS)))
    return Output(output, data_version=DataVersion(output.fingerprint), metadata=metadata)
