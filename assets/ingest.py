"""Ingestion assets: raw files -> normalized tables -> k-core -> splits, one partition per data set."""

from dataclasses import asdict

from dagster import AssetExecutionContext, Config, Output, StaticPartitionsDefinition, asset
from pydantic import Field

from assets.publishing import publish, tracked_run
from ops.caching import StageOutput
from ops.ingest import stages
from ops.ingest.datasets import DATASETS, get_dataset
from ops.tables import read_parquet
from resources import MlflowTracking, StorageResource

GROUP = "ingest"
dataset_partitions = StaticPartitionsDefinition(list(DATASETS))


class NormalizeParams(Config):
    max_reject_fraction: float = Field(
        default=stages.NormalizeConfig.max_reject_fraction,
        description="Fail when a file has more than this fraction of rejected rows (all rejects are kept).",
    )


class KCoreParams(Config):
    k: int = Field(default=stages.KCoreConfig.k, description="Keep users and items with at least k interactions.")


class SplitParams(Config):
    seed: int = Field(default=stages.SplitConfig.seed, description="Seed of the random train/valid/test split.")
    train_fraction: float = Field(default=stages.SplitConfig.train_fraction)
    valid_fraction: float = Field(default=stages.SplitConfig.valid_fraction)
    test_fraction: float = Field(default=stages.SplitConfig.test_fraction)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def normalized_dataset(
    context: AssetExecutionContext, config: NormalizeParams, storage: StorageResource, mlflow: MlflowTracking
) -> Output[StageOutput]:
    """Raw files of one data set read into normalized items / users / interactions (/ impressions) tables.

    Bad rows are kept in the `rejects` table with file, line, field and reason; the run fails when a file's
    reject rate exceeds `max_reject_fraction`.
    """
    spec = get_dataset(context.partition_key)
    settings = stages.NormalizeConfig(**config.model_dump())
    with tracked_run(context, mlflow, "normalized", {"dataset": spec.name, **asdict(settings)}) as run:
        output = stages.normalize(spec, storage.data_path, storage.output_path, settings)
        preview = read_parquet(output.file("items.parquet")).drop("attributes")
        return publish(context, run, output, preview)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def kcore_dataset(
    context: AssetExecutionContext,
    config: KCoreParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    normalized_dataset: StageOutput,
) -> Output[StageOutput]:
    """The iterative k-core of the normalized tables (every remaining user and item has >= k interactions)."""
    settings = stages.KCoreConfig(**config.model_dump())
    with tracked_run(context, mlflow, "kcore", {"upstream": normalized_dataset.fingerprint, **asdict(settings)}) as run:
        output = stages.kcore(normalized_dataset, storage.output_path, settings)
        return publish(context, run, output)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def dataset_splits(
    context: AssetExecutionContext,
    config: SplitParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """Leave-one-out (last -> test, second-to-last -> valid) and seeded random 8/1/1 splits, as tables."""
    settings = stages.SplitConfig(**config.model_dump())
    with tracked_run(context, mlflow, "splits", {"upstream": kcore_dataset.fingerprint, **asdict(settings)}) as run:
        output = stages.splits(kcore_dataset, storage.output_path, settings)
        return publish(context, run, output, read_parquet(output.file("leave_one_out.parquet")))
