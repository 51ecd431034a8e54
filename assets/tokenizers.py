"""Tokenizer asset: item embeddings -> a trained VQ-VAE / RQ-VAE / Mixture-of-Codes / Multi-Embedding tokenizer,
or a fitted, training-free RQ-KMeans."""

from dataclasses import asdict

from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from assets.choices import one_of
from assets.ingest import dataset_partitions
from assets.publishing import flatten_numbers, publish, tracked_run
from ops.caching import StageOutput
from ops.quantizers.autoencoder import AutoencoderConfig
from ops.quantizers.config import TrainConfig, config_to_dict
from ops.quantizers.kinds import TOKENIZERS, TokenizerConfig, scaled_config, train_schedule
from ops.quantizers.rqkmeans import RQKMeans, RQKMeansConfig
from ops.quantizers.stage import train_tokenizer_stage
from ops.quantizers.train import EpochLog
from ops.quantizers.vq import CodebookUpdate, VQConfig
from resources import MlflowTracking, StorageResource

GROUP = "tokenizers"
LOG_EVERY_EPOCHS = 20  # Dagster log lines; MLflow gets every epoch


EMBEDDING_TOKENIZERS = [kind for kind in TOKENIZERS if kind != "lamia"]  # LAMIA fits palettes: see the llm job


class TokenizerParams(Config):
    kind: one_of(EMBEDDING_TOKENIZERS) = Field(  # type: ignore[valid-type]
        default="rqvae",
        description="VQ-VAE (one code), RQ-VAE (TIGER, residual levels), "
        "MoC (N parallel codebooks), ME (one code, scaled by M embedding tables downstream), "
        "RQ-KMeans (residual k-means on the embeddings, training-free).",
    )
    scale: int = Field(
        default=3,
        description="Codes per item: RQ-VAE / RQ-KMeans levels, MoC codebooks; ME's scaling factor M. Ignored by "
        "VQ-VAE. The paper's study uses 1, 2, 3 and 7.",
    )
    codebook_size: int = Field(default=VQConfig.codebook_size, description="Codes per codebook (paper: 256).")
    codebook_update: one_of(CodebookUpdate) = Field(  # type: ignore[valid-type]
        default=VQConfig.update.value, description="'loss' (VQ-VAE losses) or 'ema'."
    )
    latent_dim: int = Field(default=AutoencoderConfig.latent_dim, description="Latent = code vector width (32).")
    epochs: int = Field(default=TrainConfig.epochs, description="Passes over the catalogue.")
    batch_size: int = Field(default=TrainConfig.batch_size, description="Items per step (paper: 8012).")
    lr: float = Field(default=TrainConfig.lr, description="Adam learning rate (paper: 1e-3).")
    seed: int = Field(default=TrainConfig.seed, description="Seeds weights, k-means, shuffling, restarts.")
    pca_dim: int = Field(
        default=RQKMeansConfig.pca_dim,
        description="RQ-KMeans only: cluster the top principal components of the embeddings (0 = all dimensions). "
        "RQ-KMeans ignores codebook_update, latent_dim, epochs, batch_size and lr: it has no training loop.",
    )


def tokenizer_config(params: TokenizerParams, input_dim: int) -> TokenizerConfig:
    """The typed config of ``params.kind`` with the asset's settings over the paper defaults."""
    if params.kind == RQKMeans.kind:
        settings = {
            "kmeans": {"codebook_size": params.codebook_size},
            "pca_dim": params.pca_dim,
            "input_dim": input_dim,
            "seed": params.seed,
        }
    else:
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
    return scaled_config(params.kind, params.scale, settings)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def tokenizer(
    context: AssetExecutionContext,
    config: TokenizerParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    item_embeddings: StageOutput,
) -> Output[StageOutput]:
    """A tokenizer trained (or, for RQ-KMeans, fitted) on the item embeddings; per-epoch loss, codebook usage and
    perplexity are logged (a training-free tokenizer logs its fitted state once, as epoch 0)."""
    settings = tokenizer_config(config, input_dim=int(item_embeddings.manifest["dim"]))
    schedule = train_schedule(settings)
    last_epoch = schedule.epochs if schedule is not None else 0

    with tracked_run(
        context, mlflow, "tokenizer", {"upstream": item_embeddings.fingerprint, **config.model_dump()}
    ) as run:

        def log_epoch(log: EpochLog) -> None:
            run.log_metrics(flatten_numbers(asdict(log)), step=log.epoch)
            if log.epoch in (1, last_epoch) or log.epoch % LOG_EVERY_EPOCHS == 0:
                usage = ", ".join(f"{u:.0%}" for u in log.usage)
                context.log.info(
                    f"epoch {log.epoch}: loss {log.loss:.4f}, recon {log.reconstruction_loss:.4f}, usage {usage}"
                )

        output = train_tokenizer_stage(storage.output_path, settings, item_embeddings, log_epoch)
        return publish(context, run, output)
