"""Tokenizer assets, one per family of `assets.families`: item embeddings -> a trained VQ-VAE / RQ-VAE /
Mixture-of-Codes / Multi-Embedding tokenizer, or a fitted, training-free RQ-KMeans."""

from dataclasses import asdict

from dagster import AssetExecutionContext, AssetsDefinition, Config, Output, asset
from pydantic import Field

from assets.choices import one_of
from assets.families import TRAINED_HERE, Family, tokenizer_key
from assets.ingest import dataset_partitions
from assets.publishing import curve_metrics, previous_version, publish, tracked_run
from ops.caching import StageOutput
from ops.quantizers.autoencoder import AutoencoderConfig
from ops.quantizers.config import TrainConfig, config_to_dict
from ops.quantizers.kinds import TokenizerConfig, scaled_config, train_schedule
from ops.quantizers.rqkmeans import RQKMeans, RQKMeansConfig
from ops.quantizers.stage import CHECKPOINT, HISTORY, STAGE, train_tokenizer_stage
from ops.quantizers.train import EpochLog
from ops.quantizers.vq import CodebookUpdate, VQConfig
from ops.semantic_ids.reindexing import frozen_tokenizer
from resources import MlflowTracking, StorageResource

GROUP = "tokenizers"
LOG_EVERY_EPOCHS = 20  # Dagster log lines; MLflow gets every epoch
MODEL_FILES = (CHECKPOINT, HISTORY)  # logged to the MLflow run that trained them


class TokenizerParams(Config):
    """Settings every family has."""

    scale: int = Field(
        default=3,
        description="Codes per item: RQ-VAE / RQ-KMeans levels, MoC codebooks; ME's scaling factor M. Ignored by "
        "VQ-VAE. The paper's study uses 1, 2, 3 and 7.",
    )
    codebook_size: int = Field(default=VQConfig.codebook_size, description="Codes per codebook (paper: 256).")
    seed: int = Field(default=TrainConfig.seed, description="Seeds weights, k-means, shuffling, restarts.")
    retrain: bool = Field(
        default=False,
        description="When the catalogue changed since this tokenizer was last materialized: False keeps the "
        "previous tokenizer frozen (same config and embedder), so every kept item keeps its Semantic ID and only new "
        "items are encoded; True trains it again on every item (IDs may move: the table's metadata counts them).",
    )


class TrainedTokenizerParams(TokenizerParams):
    """A tokenizer trained by gradient descent: VQ-VAE, RQ-VAE, MoC, ME."""

    codebook_update: one_of(CodebookUpdate) = Field(  # type: ignore[valid-type]
        default=VQConfig.update.value, description="'loss' (VQ-VAE losses) or 'ema'."
    )
    latent_dim: int = Field(default=AutoencoderConfig.latent_dim, description="Latent = code vector width (32).")
    epochs: int = Field(default=TrainConfig.epochs, description="Passes over the catalogue.")
    batch_size: int = Field(default=TrainConfig.batch_size, description="Items per step (paper: 8012).")
    lr: float = Field(default=TrainConfig.lr, description="Adam learning rate (paper: 1e-3).")


class RQKMeansParams(TokenizerParams):
    """RQ-KMeans: no training loop, so no epochs, batches or learning rate."""

    pca_dim: int = Field(
        default=RQKMeansConfig.pca_dim,
        description="Cluster the top principal components of the embeddings (0 = all dimensions).",
    )


def tokenizer_config(kind: str, params: TokenizerParams, input_dim: int) -> TokenizerConfig:
    """The typed config of ``kind`` with the asset's settings over the paper defaults."""
    if isinstance(params, RQKMeansParams):
        settings = {
            "kmeans": {"codebook_size": params.codebook_size},
            "pca_dim": params.pca_dim,
            "input_dim": input_dim,
            "seed": params.seed,
        }
    elif isinstance(params, TrainedTokenizerParams):
        settings = {
            "vq": {
                **config_to_dict(VQConfig()),
                "codebook_size": params.codebook_size,
                "update": params.codebook_update,
            },
            "autoencoder": {
                **config_to_dict(AutoencoderConfig()),
                "input_dim": input_dim,
                "latent_dim": params.latent_dim,
            },
            "train": {"epochs": params.epochs, "batch_size": params.batch_size, "lr": params.lr, "seed": params.seed},
        }
    else:
        raise TypeError(f"no tokenizer settings for {type(params).__name__}")
    return scaled_config(kind, params.scale, settings)


def tokenizer_asset(family: Family) -> AssetsDefinition:
    """The tokenizer asset of ``family``: trained (or, for RQ-KMeans, fitted) on the item embeddings."""
    params_class = RQKMeansParams if family.kind == RQKMeans.kind else TrainedTokenizerParams

    @asset(
        name=tokenizer_key(family.kind).path[-1],
        group_name=GROUP,
        partitions_def=dataset_partitions,
        description=f"{family.label}. Per-epoch loss, codebook usage and perplexity go to MLflow (a training-free "
        "tokenizer logs its fitted state once, as epoch 0); the checkpoint and history are the run's artifacts. "
        "After the catalogue changes, the previous version stays frozen unless `retrain` is set.",
    )
    def tokenizer(
        context: AssetExecutionContext,
        config: params_class,  # type: ignore[valid-type]
        storage: StorageResource,
        mlflow: MlflowTracking,
        item_embeddings: StageOutput,
    ) -> Output[StageOutput]:
        settings = tokenizer_config(family.kind, config, input_dim=int(item_embeddings.manifest["dim"]))
        schedule = train_schedule(settings)
        last_epoch = schedule.epochs if schedule is not None else 0
        params = {"upstream": item_embeddings.fingerprint, "kind": family.kind, **config.model_dump()}
        previous = None if config.retrain else previous_version(context, storage.output_path, STAGE)
        frozen = frozen_tokenizer(storage.output_path, settings, item_embeddings, previous)
        with tracked_run(context, mlflow, STAGE, params, tokenizer=family.kind) as run:

            def log_epoch(log: EpochLog) -> None:
                run.log_metrics(curve_metrics(asdict(log)), step=log.epoch)
                if log.epoch in (1, last_epoch) or log.epoch % LOG_EVERY_EPOCHS == 0:
                    usage = ", ".join(f"{u:.0%}" for u in log.usage)
                    context.log.info(
                        f"epoch {log.epoch}: loss {log.loss:.4f}, recon {log.reconstruction_loss:.4f}, usage {usage}"
                    )

            if frozen is not None:
                context.log.info(
                    f"the catalogue changed; keeping tokenizer {frozen.fingerprint} frozen (trained on embeddings "
                    f"{frozen.manifest['embeddings']['fingerprint']}): set retrain: true to train it again"
                )
            output = frozen or train_tokenizer_stage(storage.output_path, settings, item_embeddings, log_epoch)
            trained_on = {"trained_on_embeddings": output.manifest["embeddings"]["fingerprint"]}
            return publish(context, run, output, artifacts=MODEL_FILES, metadata=trained_on)

    return tokenizer


TOKENIZER_ASSETS = {family.kind: tokenizer_asset(family) for family in TRAINED_HERE}
