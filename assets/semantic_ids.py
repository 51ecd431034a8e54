"""Semantic-ID table asset: every item's codes under a frozen tokenizer, immutable and versioned."""

import polars as pl
from dagster import AssetExecutionContext, Output, asset

from assets.ingest import dataset_partitions
from assets.publishing import publish, tracked_run
from ops.caching import StageOutput
from ops.semantic_ids.stage import read_table, semantic_ids_stage
from resources import MlflowTracking, StorageResource

GROUP = "semantic_ids"


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def semantic_ids(
    context: AssetExecutionContext,
    storage: StorageResource,
    mlflow: MlflowTracking,
    tokenizer: StageOutput,
    item_embeddings: StageOutput,
) -> Output[StageOutput]:
    """`item_id`, `codes`, `collision_suffix` for every embedded item, with a manifest naming the tokenizer,
    the embedding version, code usage and the collision rate before and after the suffix."""
    params = {"tokenizer": tokenizer.fingerprint, "embeddings": item_embeddings.fingerprint}
    with tracked_run(context, mlflow, "semantic_ids", params) as run:
        output = semantic_ids_stage(storage.output_path, tokenizer, item_embeddings, {"mlflow_run_id": run.run_id})
        preview = read_table(output).head(10).with_columns(pl.col("codes").cast(pl.List(pl.String)).list.join(" "))
        return publish(context, run, output, preview)
