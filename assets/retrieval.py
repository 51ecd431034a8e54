"""Generative-retrieval assets: TIGER and the decoder-only recommender, each trained on a Semantic-ID table and
evaluated beside the most-popular baseline, and the SASRec baseline."""

from dataclasses import asdict, replace
from typing import TypeVar

from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from assets.families import TABLE_KEYS, TableChoice, chosen_table, table_metadata
from assets.ingest import dataset_partitions
from assets.publishing import curve_metrics, publish, tracked_run
from ops.caching import StageOutput, existing_version
from ops.device import Precision
from ops.quantizers.config import config_to_dict
from ops.retrieval.decoder import DecoderConfig
from ops.retrieval.model import TIGERConfig
from ops.retrieval.sasrec import SASRecConfig
from ops.retrieval.sequences import SequenceConfig
from ops.retrieval.stage import (
    CHECKPOINT,
    DECODER_CHECKPOINT,
    HISTORY,
    SASREC_CHECKPOINT,
    evaluate_decoder_stage,
    evaluate_tiger_stage,
    train_decoder_stage,
    train_sasrec_stage,
    train_tiger_stage,
)
from ops.retrieval.train import EpochCallback, EpochLog, TrainConfig
from ops.semantic_ids.stage import STAGE as SEMANTIC_IDS_STAGE
from resources import MlflowTracking, StorageResource
from resources.mlflow_tracking import TrackedRun

GROUP = "retrieval"
DEFAULT_TRAIN = TrainConfig()
Model = TypeVar("Model", TIGERConfig, DecoderConfig)


class RetrievalTrainParams(Config):
    """Training settings shared by every retrieval model."""

    max_train_seconds: float = Field(
        default=DEFAULT_TRAIN.max_train_seconds,
        description="Wall-clock budget of the whole fit (steps + validations); the best epoch so far is kept.",
    )
    max_epochs: int = Field(default=DEFAULT_TRAIN.max_epochs, description="Upper bound on epochs.")
    patience: int = Field(
        default=DEFAULT_TRAIN.patience, description="Validations after warm-up without a better Recall@10 ..."
    )
    patience_share: float = Field(
        default=DEFAULT_TRAIN.patience_share,
        description="... and at least this share of the run (budget or planned steps) without one, before stopping.",
    )
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
            patience_share=self.patience_share,
            eval_users=self.eval_users,
            seed=self.seed,
        )


class SIDModelParams(RetrievalTrainParams, TableChoice):
    """Settings shared by the Semantic-ID recommenders (TIGER, the decoder-only model, the LLM recommender)."""

    max_history: int = Field(default=SequenceConfig.max_history, description="Last items of a history the model reads.")
    user_buckets: int = Field(default=SequenceConfig.user_buckets, description="Hashed user tokens (0 = none).")
    lr: float = Field(
        default=DEFAULT_TRAIN.lr,
        description="Peak AdamW learning rate: linear warm-up over the first 5% of the budget, cosine decay to 10% of "
        "it by the end of the budget.",
    )
    precision: str = Field(
        default=DEFAULT_TRAIN.precision.value,
        description="'auto': bf16 autocast of the training steps where the hardware multiplies bf16 natively (a CPU "
        "with AMX or AVX512-BF16, a recent GPU), float32 elsewhere; 'bf16': bf16 autocast everywhere (emulated, "
        "slower, where not native); 'float32': no autocast. Weights stay float32.",
    )

    batch_size: int = Field(default=TIGERConfig().train.batch_size, description="Training examples per AdamW step.")

    def settings(self, defaults: Model) -> Model:
        """``defaults`` (a TIGER or decoder config) with these settings applied."""
        train = replace(
            self.applied_to(defaults.train), batch_size=self.batch_size, lr=self.lr, precision=Precision(self.precision)
        )
        return replace(defaults, sequence=SequenceConfig(self.max_history, self.user_buckets), train=train)


class TigerParams(SIDModelParams):
    """TIGER's settings: those every Semantic-ID model has."""


class DecoderParams(SIDModelParams):
    batch_size: int = Field(
        default=DecoderConfig().train.batch_size,
        description="User windows per AdamW step (each trains all its next-item targets: 5.6 on Beauty).",
    )
    level_embedding: bool = Field(
        default=DecoderConfig.level_embedding, description="Add a learned vector per Semantic-ID level to its tokens."
    )
    init_from_codes: bool = Field(
        default=DecoderConfig.init_from_codes,
        description="Start the code tokens' embeddings from the tokenizer's code vectors (PCA + random rotation).",
    )


class EvalParams(Config):
    beams: int = Field(default=20, description="Beam width = items returned per user (metrics at 5, 10, 20).")


class SASRecParams(RetrievalTrainParams):
    max_len: int = Field(default=SASRecConfig.max_len, description="Items of a history the model attends to.")


@asset(group_name=GROUP, partitions_def=dataset_partitions, deps=TABLE_KEYS)
def tiger_model(
    context: AssetExecutionContext,
    config: TigerParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """TIGER (T5 encoder-decoder, 4+4 layers) trained from scratch to generate the next item's Semantic ID;
    early stopping on validation Recall@10, per-epoch loss and validation metrics in MLflow."""
    settings = config.settings(TIGERConfig())
    return _train(context, "tiger_model", config, settings, storage, mlflow, dataset_splits)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def retrieval_eval(
    context: AssetExecutionContext,
    config: EvalParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    tiger_model: StageOutput,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """Recall/NDCG@5/10/20 of TIGER over every test user with trie-constrained beam search, beside the
    most-popular baseline on the same users; every returned item is checked against the Semantic-ID table version
    named in the metadata (`invalid_items` must be 0)."""
    return _evaluate(context, "retrieval_eval", config, storage, mlflow, tiger_model, dataset_splits)


@asset(group_name=GROUP, partitions_def=dataset_partitions, deps=TABLE_KEYS)
def decoder_model(
    context: AssetExecutionContext,
    config: DecoderParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """The decoder-only Semantic-ID recommender (a 4-layer causal LM from scratch, TIGER's width) trained on every
    next-item target of a user in one pass; early stopping on validation Recall@10, per-epoch metrics in MLflow."""
    settings = replace(
        config.settings(DecoderConfig()),
        level_embedding=config.level_embedding,
        init_from_codes=config.init_from_codes,
    )
    return _train(context, "decoder_model", config, settings, storage, mlflow, dataset_splits)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def decoder_eval(
    context: AssetExecutionContext,
    config: EvalParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    decoder_model: StageOutput,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """Recall/NDCG@5/10/20 of the decoder-only model over every test user with the cached trie-constrained beam
    search, beside the most-popular baseline; `invalid_items` (checked against the table) must be 0."""
    return _evaluate(context, "decoder_eval", config, storage, mlflow, decoder_model, dataset_splits)


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
        return publish(context, run, output, artifacts=(SASREC_CHECKPOINT, HISTORY))


def _epoch_logger(context: AssetExecutionContext, run: TrackedRun) -> EpochCallback:
    def log_epoch(log: EpochLog) -> None:
        run.log_metrics(curve_metrics(asdict(log)), step=log.epoch)
        valid = ", ".join(f"{key} {value:.4f}" for key, value in log.valid.items())
        context.log.info(
            f"epoch {log.epoch}: loss {log.train_loss:.4f}, {log.samples_per_s:.0f} samples/s, valid {valid}"
        )

    return log_epoch


TRAIN_STAGES = {"tiger_model": train_tiger_stage, "decoder_model": train_decoder_stage}
MODEL_FILES = {"tiger_model": (CHECKPOINT, HISTORY), "decoder_model": (DECODER_CHECKPOINT, HISTORY)}
EVAL_STAGES = {"retrieval_eval": evaluate_tiger_stage, "decoder_eval": evaluate_decoder_stage}


def _train(
    context: AssetExecutionContext,
    name: str,
    config: SIDModelParams,
    settings: TIGERConfig | DecoderConfig,
    storage: StorageResource,
    mlflow: MlflowTracking,
    splits: StageOutput,
) -> Output[StageOutput]:
    """Train the Semantic-ID model ``name`` on the table its config chooses."""
    table = chosen_table(context, storage.output_path, config)
    params = {"splits": splits.fingerprint, "semantic_ids": table.fingerprint, **config_to_dict(settings)}
    with tracked_run(context, mlflow, name, params, tokenizer=table.manifest["tokenizer"]["kind"]) as run:
        train = TRAIN_STAGES[name]
        output = train(storage.output_path, splits, table, settings, _epoch_logger(context, run))
        return publish(context, run, output, artifacts=MODEL_FILES[name], metadata=table_metadata(table))


def _evaluate(
    context: AssetExecutionContext,
    name: str,
    config: EvalParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    model: StageOutput,
    splits: StageOutput,
) -> Output[StageOutput]:
    """Evaluate a trained Semantic-ID model on the exact table version it was trained on."""
    table = trained_table(storage, model)
    params = {"model": model.fingerprint, "semantic_ids": table.fingerprint, "beams": config.beams}
    with tracked_run(context, mlflow, name, params, tokenizer=table.manifest["tokenizer"]["kind"]) as run:
        output = EVAL_STAGES[name](storage.output_path, model, splits, table, config.beams)
        return publish(context, run, output, metadata=table_metadata(table))


def trained_table(storage: StorageResource, model: StageOutput) -> StageOutput:
    """The exact Semantic-ID table version a trained model names in its manifest."""
    return existing_version(storage.output_path, SEMANTIC_IDS_STAGE, model.manifest["sid_table"]["fingerprint"])
