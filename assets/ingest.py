"""Ingestion assets: raw files -> normalized tables -> k-core -> splits, one partition per data set.

The partitions are the data sets of the registry (``datasets/*.yaml`` and ``$SEMID_DATASETS``), read when the
definitions load: a data set registered there is a partition the UI lists, and a name that is not one is refused
when a run is requested. The k-core and split settings default to the data set's own (its YAML), else the global
defaults.
"""

from dataclasses import asdict, replace

from dagster import AssetExecutionContext, AssetKey, Config, Output, StaticPartitionsDefinition, asset
from dagster import Field as DagsterField
from dagster._config import ConfigTypeKind, PostProcessingError
from dagster._config.field_utils import _ConfigHasFields
from pydantic import Field, ValidationError, model_validator

from assets.publishing import publish, tracked_run
from ops.caching import StageOutput
from ops.ingest import stages
from ops.ingest.config import check_fractions
from ops.ingest.datasets import DATASETS, get_dataset
from ops.tables import read_parquet
from resources import MlflowTracking, StorageResource

GROUP = "ingest"
RAW_FILES = AssetKey("raw_files")  # the observed source asset of `assets/raw_files.py`
dataset_partitions = StaticPartitionsDefinition(list(DATASETS))


class NormalizeParams(Config):
    max_reject_fraction: float = Field(
        default=stages.NormalizeConfig.max_reject_fraction,
        description="Fail when a file has more than this fraction of rejected rows (all rejects are kept).",
    )


class KCoreParams(Config):
    k: int | None = Field(
        default=None,
        description="Keep users and items with at least k interactions; empty = the data set's own k "
        f"(`kcore.k` in its YAML, else {stages.KCoreConfig.k}).",
    )


class SplitParams(Config):
    """Empty fields take the data set's own split (`splits` in its YAML, else seed 42 and 0.8/0.1/0.1)."""

    seed: int | None = Field(default=None, description="Seed of the random train/valid/test split.")
    train_fraction: float | None = Field(default=None, description="Share of interactions in the random train part.")
    valid_fraction: float | None = Field(default=None, description="Share in the valid part.")
    test_fraction: float | None = Field(default=None, description="Share in the test part; the three sum to 1.")

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> "SplitParams":
        fractions = (self.train_fraction, self.valid_fraction, self.test_fraction)
        if any(value is not None for value in fractions):
            if None in fractions:
                raise ValueError(
                    "set train_fraction, valid_fraction and test_fraction together (or none: the data set's own)"
                )
            check_fractions(*fractions)
        return self


class _LaunchValidated(_ConfigHasFields):
    """The config schema of a `Config` class whose post-processing runs that class's pydantic validators.

    Dagster validates run config against the schema when a run is requested, but builds the `Config` object (and
    so runs its validators) only when the step starts: a cross-field rule would fail minutes into a run. The
    post-processing of a config type is the one hook Dagster runs at launch (materialize, CLI, the UI's Launch),
    so a violation here refuses the run before it exists. It is a strict shape like Dagster's own, so the
    launchpad shows the same fields. Built on Dagster's config internals (pinned <1.14): the launch-validation
    test fails if they change.
    """

    def __init__(self, model: type[Config]) -> None:
        shape = model.to_config_schema().as_field().config_type
        super().__init__(
            fields=shape.fields,
            kind=ConfigTypeKind.STRICT_SHAPE,
            key=f"LaunchValidated.{model.__module__}.{model.__qualname__}",
            description=shape.description,
        )
        self.field_aliases: dict[str, str] = {}
        self.model = model

    def post_process(self, value: dict[str, object]) -> dict[str, object]:
        try:
            self.model.model_validate(value)
        except ValidationError as error:
            raise PostProcessingError("; ".join(str(problem["msg"]) for problem in error.errors())) from None
        return value


def launch_validated(model: type[Config]) -> DagsterField:
    """``config_schema`` for an asset whose ``model`` has cross-field validators that must hold at launch."""
    return DagsterField(_LaunchValidated(model), description=model.__doc__)


def given(config: Config) -> dict[str, object]:
    """The fields a run sets (not None): they override the data set's defaults."""
    return {name: value for name, value in config.model_dump().items() if value is not None}


@asset(group_name=GROUP, partitions_def=dataset_partitions, deps=[RAW_FILES])
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
    settings = replace(get_dataset(context.partition_key).kcore, **given(config))
    with tracked_run(context, mlflow, "kcore", {"upstream": normalized_dataset.fingerprint, **asdict(settings)}) as run:
        output = stages.kcore(normalized_dataset, storage.output_path, settings)
        return publish(context, run, output)


@asset(group_name=GROUP, partitions_def=dataset_partitions, config_schema=launch_validated(SplitParams))
def dataset_splits(
    context: AssetExecutionContext,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """Leave-one-out (last -> test, second-to-last -> valid) and seeded random 8/1/1 splits, as tables."""
    config = SplitParams.model_validate(context.op_execution_context.op_config)
    settings = replace(get_dataset(context.partition_key).splits, **given(config))
    with tracked_run(context, mlflow, "splits", {"upstream": kcore_dataset.fingerprint, **asdict(settings)}) as run:
        output = stages.splits(kcore_dataset, storage.output_path, settings)
        return publish(context, run, output, read_parquet(output.file("leave_one_out.parquet")))
