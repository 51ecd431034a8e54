"""Generative-retrieval assets: TIGER trained on a Semantic-ID table, its evaluation, and the SASRec baseline."""

from dataclasses import asdict, replace
from typing import Any

from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from assets.ingest import dataset_partitions
from assets.publishing import flatten_numbers, pinned_or_upstream, publish, tracked_run
from ops.caching import StageOutput, existing_version
from ops.quantizers.config import config_to_dict
from ops.retrieval.model import TIGERConfig
from ops.retrieval.sasrec import SASRecConfig
from ops.retrieval.sequences import SequenceConfig
from ops.retrieval.stage import evaluate_tiger_stage, train_sasrec_stage, train_tiger_stage
from ops.retrieval.train import EpochCallback, EpochLog, TrainConfig
from ops.semantic_ids.stage import STAGE as SEMANTIC_IDS_STAGE
from resources import MlflowTracking, StorageResource
from resources.mlflow_tracking import TrackedRun

GROUP = "retrieval"
DEFAULT_TRAIN = TrainConfig()


class RetrievalTrainParams(Config):
    """Training settings shared by TIGER and SASRec."""

    max_train_seconds: float = Field(
        default=DEFAULT_TRAIN.max_train_seconds,
        description="Wall-clock budget of the whole fit (steps + validations); the best epoch so far is kept.",
    )
    max_epochs: int = Field(default=DEFAULT_TRAIN.max_epochs, description="Upper bound on epochs.")
    patience: int = Field(default=DEFAULT_TRAIN.patience, description="Validations without a better Recall@10.")
    eval_users: int = Field(
        default=DEFAULT_TRAIN.eval_users, description="Seeded sample of validation users per epoch (0 = all)."
    )
    seed: int = Field(default=DEFAULT_TRAIN.seed, description="Weights, dropout, shuffling, validation sample.")

    def applied_to(self, train: TrainConfig) -> TrainConfig:
        return replace(
            train,
            max_train_seconds=self.max_train_seconds,
            max_epochs=self.max_epochs,
            patience=self.patience,
            eval_users=self.eval_users,
            seed=self.seed,
        )


class TigerParams(RetrievalTrainParams):
    semantic_ids_version: str = Field(
        default="",
        description="Fingerprint of a stored Semantic-ID table version (data/semantic_ids/<fingerprint>: an RQ-VAE, "
        "MoC or later LAMIA table) to train on instead of the upstream `semantic_ids` asset's; empty = upstream.",
    )
    max_history: int = Field(
        default=SequenceConfig.max_history, description="Last items of a history fed to the encoder."
    )
    user_buckets: int = Field(default=SequenceConfig.user_buckets, description="Hashed user tokens (0 = none).")
    batch_size: int = Field(default=DEFAULT_TRAIN.batch_size, description="Training examples per AdamW step.")
    lr: float = Field(default=DEFAULT_TRAIN.lr, description="Peak AdamW learning rate (warm-up, then inverse sqrt).")
    mixed_precision: bool = Field(
        default=DEFAULT_TRAIN.mixed_precision,
        description="bf16 autocast of the training steps where the hardware multiplies bf16 natively (a CPU with AMX "
        "or AVX512-BF16, a recent GPU); weights stay float32. False: float32 throughout.",
    )


class EvalParams(Config):
    beams: int = Field(default=20, description="Beam width = items returned per user (metrics at 5, 10, 20).")


class SASRecParams(RetrievalTrainParams):
    max_len: int = Field(default=SASRecConfig.max_len, description="Items of a history the model attends to.")


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def tiger_model(
    context: AssetExecutionContext,
    config: TigerParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    dataset_splits: StageOutput,
    semantic_ids: StageOutput,
) -> Output[StageOutput]:
    """TIGER (T5 encoder-decoder, 4+4 layers) trained from scratch to generate the next item's Semantic ID;
    early stopping on validation Recall@10, per-epoch loss and validation metrics in MLflow."""
    table = pinned_or_upstream(storage.output_path, SEMANTIC_IDS_STAGE, config.semantic_ids_version, semantic_ids)
    defaults = TIGERConfig()
    settings = replace(
        defaults,
        sequence=SequenceConfig(config.max_history, config.user_buckets),
        train=replace(
            config.applied_to(defaults.train),
            batch_size=config.batch_size,
            lr=config.lr,
            mixed_precision=config.mixed_precision,
        ),
    )
    params = {"splits": dataset_splits.fingerprint, "semantic_ids": table.fingerprint, **config_to_dict(settings)}
    with tracked_run(context, mlflow, "tiger_model", params) as run:
        output = train_tiger_stage(storage.output_path, dataset_splits, table, settings, _epoch_logger(context, run))
        return publish(context, run, output)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def retrieval_eval(
    context: AssetExecutionContext,
    config: EvalParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    tiger_model: StageOutput,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """Recall/NDCG@5/10/20 of TIGER over every test user with trie-constrained beam search; every returned item
    is checked against the Semantic-ID table version named in the metadata (`invalid_items` must be 0)."""
    table = existing_version(storage.output_path, SEMANTIC_IDS_STAGE, tiger_model.manifest["sid_table"]["fingerprint"])
    params = {"model": tiger_model.fingerprint, "semantic_ids": table.fingerprint, "beams": config.beams}
    with tracked_run(context, mlflow, "retrieval_eval", params) as run:
        output = evaluate_tiger_stage(storage.output_path, tiger_model, dataset_splits, table, config.beams)
        return publish(context, run, output)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def sasrec_model(
    context: AssetExecutionContext,
    config: SASRecParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """The ID-based SASRec baseline (full-softmax cross-entropy) on the same leave-one-out split, tested with
    full ranking: whether Semantic IDs help on this data set."""
    defaults = SASRecConfig()
    settings = replace(defaults, max_len=config.max_len, train=config.applied_to(defaults.train))
    with tracked_run(
        context, mlflow, "sasrec_model", {"splits": dataset_splits.fingerprint, **asdict(settings)}
    ) as run:
        output = train_sasrec_stage(storage.output_path, dataset_splits, settings, _epoch_logger(context, run))
        return publish(context, run, output)


def _epoch_logger(context: AssetExecutionContext, run: TrackedRun) -> EpochCallback:
    def log_epoch(log: EpochLog) -> None:
        values: dict[str, Any] = flatten_numbers(asdict(log))
        run.log_metrics(values, step=log.epoch)
        valid = ", ".join(f"{key} {value:.4f}" for key, value in log.valid.items())
        context.log.info(
            f"epoch {log.epoch}: loss {log.train_loss:.4f}, {log.samples_per_s:.0f} samples/s, valid {valid}"
        )

    return log_epoch
