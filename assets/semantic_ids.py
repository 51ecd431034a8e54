"""Semantic-ID table assets, one per family of `assets.families`: every item's codes under a frozen tokenizer,
immutable and versioned."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Output, asset

from assets.families import TRAINED_HERE, Family, table_key, tokenizer_key
from assets.ingest import dataset_partitions
from assets.publishing import publish, tracked_run
from ops.caching import StageOutput
from ops.semantic_ids.stage import STAGE, TABLE, read_table, semantic_ids_stage
from resources import MlflowTracking, StorageResource

GROUP = "semantic_ids"


def table_preview(output: StageOutput) -> pl.DataFrame:
    """The first rows with each item's codes as one readable string, for the UI."""
    return read_table(output).head(10).with_columns(pl.col("codes").cast(pl.List(pl.String)).list.join(" "))


def table_asset(family: Family) -> AssetsDefinition:
    """The Semantic-ID table asset of ``family``, encoded by its tokenizer asset's checkpoint."""

    @asset(
        name=table_key(family.kind).path[-1],
        group_name=GROUP,
        partitions_def=dataset_partitions,
        ins={"tokenizer": AssetIn(tokenizer_key(family.kind))},
        description=f"{family.label}. `item_id`, `codes`, `collision_suffix` for every embedded item, with a "
        "manifest naming the tokenizer, the embedding version, code usage and the collision rate before and after "
        "the suffix.",
    )
    def table(
        context: AssetExecutionContext,
        storage: StorageResource,
        mlflow: MlflowTracking,
        tokenizer: StageOutput,
        item_embeddings: StageOutput,
    ) -> Output[StageOutput]:
        params = {"tokenizer": tokenizer.fingerprint, "embeddings": item_embeddings.fingerprint}
        with tracked_run(context, mlflow, STAGE, params, tokenizer=family.kind) as run:
            output = semantic_ids_stage(storage.output_path, tokenizer, item_embeddings, {"mlflow_run_id": run.run_id})
            return publish(context, run, output, table_preview(output), artifacts=(TABLE,))

    return table


TABLE_ASSETS = {family.kind: table_asset(family) for family in TRAINED_HERE}
