"""Asset checks: what a stage publishes is sound before anything downstream reads it.

Blocking checks stop a run before a bad version reaches the next stage (a blocking check that fails skips
everything downstream of its asset in that run). Each check calls one `ops.reports.validation` function, whose
message says what is wrong, how many rows, and what to change. The factories take the asset to check, so every
Semantic-ID table asset (one per tokenizer) and every metric-producing asset gets the same checks.
"""

from dagster import AssetCheckResult, AssetChecksDefinition, AssetsDefinition, Config, asset_check
from pydantic import Field

from assets import ctr, embeddings, llm, retrieval, semantic_ids
from ops.caching import StageOutput
from ops.reports import validation
from resources import StorageResource

DEFAULT_MIN_USAGE = 0.5  # a level using under half the codes it could use has collapsed


class UsageCheckParams(Config):
    min_usage: float = Field(
        default=DEFAULT_MIN_USAGE,
        ge=0.0,
        le=1.0,
        description="Fail when a level uses fewer than this fraction of the codes it could use (the codebook size, "
        "or the number of items when there are fewer). The tokenizer benchmark's goal is 0.95.",
    )


def result(outcome: validation.Outcome) -> AssetCheckResult:
    return AssetCheckResult(passed=outcome.passed, description=outcome.message, metadata=outcome.metadata)


def semantic_id_checks(table: AssetsDefinition) -> list[AssetChecksDefinition]:
    """Uniqueness of (codes, suffix), code usage per level, and rows = embedded items, for one table asset."""

    @asset_check(
        asset=table,
        name="unique_semantic_ids",
        blocking=True,
        partitions_def=table.partitions_def,
        description="Every (codes, collision_suffix) names exactly one item.",
    )
    def unique(value: StageOutput) -> AssetCheckResult:
        return result(validation.check_unique(value))

    @asset_check(
        asset=table,
        name="code_usage",
        blocking=True,
        partitions_def=table.partitions_def,
        description="Every level uses at least `min_usage` of the codes it could use.",
    )
    def usage(config: UsageCheckParams, value: StageOutput) -> AssetCheckResult:
        return result(validation.check_usage(value, config.min_usage))

    @asset_check(
        asset=table,
        name="rows_match_embeddings",
        blocking=True,
        partitions_def=table.partitions_def,
        description="The table has one row per embedded item, and no other rows.",
    )
    def rows(storage: StorageResource, value: StageOutput) -> AssetCheckResult:
        return result(validation.check_rows(storage.output_path, value))

    return [unique, usage, rows]


def finite_embeddings_check(vectors: AssetsDefinition) -> AssetChecksDefinition:
    @asset_check(
        asset=vectors,
        name="finite_embeddings",
        blocking=True,
        partitions_def=vectors.partitions_def,
        description="No NaN or inf in any item vector.",
    )
    def finite(value: StageOutput) -> AssetCheckResult:
        return result(validation.check_embeddings(value))

    return finite


def metric_range_check(producer: AssetsDefinition) -> AssetChecksDefinition:
    """AUCs / recalls / NDCGs of a CTR, study, TIGER- or decoder-evaluation or SASRec asset lie in [0, 1]."""

    @asset_check(
        asset=producer,
        name="metrics_in_unit_interval",
        blocking=True,
        partitions_def=producer.partitions_def,
        description="Every AUC, recall and NDCG the asset reports is a number in [0, 1].",
    )
    def in_range(value: StageOutput) -> AssetCheckResult:
        return result(validation.check_metrics(value))

    return in_range


TABLES = [*semantic_ids.TABLE_ASSETS.values(), llm.semantic_ids_lamia]  # every family's table

ALL_CHECKS = [
    *(check for table in TABLES for check in semantic_id_checks(table)),
    finite_embeddings_check(embeddings.item_embeddings),
    *(
        metric_range_check(asset)
        for asset in (
            ctr.ctr_model,
            ctr.scaling_study,
            retrieval.retrieval_eval,
            retrieval.decoder_eval,
            retrieval.sasrec_model,
        )
    ),
]
