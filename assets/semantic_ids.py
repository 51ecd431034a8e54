"""Semantic-ID table assets, one per family of `assets.families`: every item's codes under a frozen tokenizer,
immutable and versioned; a re-run after the catalogue changed appends new items to the previous version."""

from pathlib import Path
from typing import Any

import polars as pl
from dagster import AssetExecutionContext, AssetIn, AssetsDefinition, Output, asset

from assets.families import TRAINED_HERE, Family, table_key, tokenizer_key
from assets.ingest import dataset_partitions
from assets.publishing import previous_version, publish, tracked_run
from ops.caching import StageOutput
from ops.semantic_ids.changes import compare_versions
from ops.semantic_ids.stage import STAGE, TABLE, next_table_version, read_table
from resources import MlflowTracking, StorageResource

GROUP = "semantic_ids"
STABILITY_COUNTS = ("items_added", "items_removed", "items_kept", "items_changed_codes", "items_changed_semantic_id")


def table_preview(output: StageOutput) -> pl.DataFrame:
    """The first rows with each item's codes as one readable string, for the UI."""
    return read_table(output).head(10).with_columns(pl.col("codes").cast(pl.List(pl.String)).list.join(" "))


def stability(output_root: Path, previous: StageOutput | None, output: StageOutput) -> dict[str, Any]:
    """Semantic-ID stability against the version this asset published last: what changed for whom reads IDs."""
    if previous is None:
        return {"compared_with": "none (first version)"}
    if previous.fingerprint == output.fingerprint:  # nothing changed: no comparison to store (or to report)
        kept = {"items_added": 0, "items_removed": 0, "items_kept": output.manifest["n_items"]}
        return {"compared_with": previous.fingerprint, **kept, "items_changed_codes": 0, "items_changed_semantic_id": 0}
    manifest = compare_versions(output_root, previous, output).manifest
    return {"compared_with": previous.fingerprint, **{key: manifest[key] for key in STABILITY_COUNTS}}


def table_asset(family: Family) -> AssetsDefinition:
    """The Semantic-ID table asset of ``family``, encoded by its tokenizer asset's checkpoint."""

    @asset(
        name=table_key(family.kind).path[-1],
        group_name=GROUP,
        partitions_def=dataset_partitions,
        ins={"tokenizer": AssetIn(tokenizer_key(family.kind))},
        description=f"{family.label}. `item_id`, `codes`, `collision_suffix` for every embedded item, with a "
        "manifest naming the tokenizer, the embedding version, code usage and the collision rate before and after "
        "the suffix. Under the same (frozen) tokenizer a new catalogue appends its new items to the last version: "
        "kept items keep their IDs, removed ones keep theirs reserved; `items_changed_semantic_id` says how many "
        "IDs moved since the last version.",
    )
    def table(
        context: AssetExecutionContext,
        storage: StorageResource,
        mlflow: MlflowTracking,
        tokenizer: StageOutput,
        item_embeddings: StageOutput,
    ) -> Output[StageOutput]:
        params = {"tokenizer": tokenizer.fingerprint, "embeddings": item_embeddings.fingerprint}
        previous = previous_version(context, storage.output_path, STAGE)
        with tracked_run(context, mlflow, STAGE, params, tokenizer=family.kind) as run:
            run_info = {"mlflow_run_id": run.run_id}
            output = next_table_version(storage.output_path, tokenizer, item_embeddings, previous, run_info)
            changes = stability(storage.output_path, previous, output)
            run.log_metrics({f"stability/{key}": changes[key] for key in STABILITY_COUNTS if key in changes})
            return publish(context, run, output, table_preview(output), artifacts=(TABLE,), metadata=changes)

    return table


TABLE_ASSETS = {family.kind: table_asset(family) for family in TRAINED_HERE}
