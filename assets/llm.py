"""LLM assets: decoders adapted to the catalogue with LoRA, each a cached stage of its own, and what they make.

    kcore_dataset -> llm2vec_model -> llm2vec_embeddings            (an embedding table like item_embeddings)
    kcore_dataset -> lamia_model -> lamia_palettes -> semantic_ids_lamia   (the lamia family's Semantic-ID table)

Every training step's loss parts go to the asset's MLflow run; each training run stops at its wall-clock budget
and its manifest records how far it got.
"""

from dataclasses import asdict, replace

from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from assets.families import table_key
from assets.ingest import dataset_partitions
from assets.publishing import flatten_numbers, publish, tracked_run
from assets.semantic_ids import GROUP as SEMANTIC_IDS_GROUP
from assets.semantic_ids import table_preview
from ops.caching import StageOutput
from ops.embeddings.config import SMOLLM2, llm2vec_config
from ops.embeddings.stage import embed
from ops.embeddings.templates import TEMPLATES
from ops.ingest.datasets import get_dataset
from ops.llm.lamia import LamiaConfig
from ops.llm.llm2vec import LLM2VecConfig
from ops.llm.lora import LoraSettings
from ops.llm.stage import StepCallback, lamia_model_stage, lamia_palettes_stage, lamia_table_stages, llm2vec_stage
from ops.llm.trainer import StepLog
from ops.quantizers.kmeans import KMeansConfig
from ops.quantizers.lamia import LamiaQuantizerConfig, LamiaTokenizer
from ops.semantic_ids.stage import STAGE as SEMANTIC_IDS_STAGE
from ops.semantic_ids.stage import TABLE
from resources import MlflowTracking, StorageResource
from resources.mlflow_tracking import TrackedRun

GROUP = "llm"
LAMIA = LamiaTokenizer.kind
LOG_EVERY_STEPS = 10  # Dagster log lines; MLflow gets every step


class LLM2VecParams(Config):
    model: str = Field(default=SMOLLM2, description="Decoder to adapt: a local-cache name, a model folder or hub id.")
    lora_rank: int = Field(default=16, description="LoRA rank of both steps (LLM2Vec: 16; alpha = 2 x rank).")
    mntp_budget_s: float = Field(default=3600.0, description="Wall-clock seconds for MNTP (0 = one full epoch).")
    mntp_batch_size: int = Field(default=32, description="Texts per MNTP optimizer step (LLM2Vec: 32).")
    simcse_budget_s: float = Field(default=1800.0, description="Wall-clock seconds for SimCSE (0 = one epoch).")
    simcse_batch_size: int = Field(default=32, description="Texts per SimCSE step = in-batch negatives + 1.")
    precision: str = Field(default="auto", description="'auto' (bf16 autocast where native), 'bf16', 'float32'.")


class LLM2VecEmbeddingParams(Config):
    batch_size: int = Field(default=32, description="Texts per forward pass.")
    max_length: int = Field(default=128, description="Tokens kept per text (LLM2Vec trains on 128).")


def llm2vec_settings(params: LLM2VecParams) -> LLM2VecConfig:
    """LLM2Vec's defaults with the asset's model, rank, batches, budgets and precision."""
    defaults = LLM2VecConfig()
    mntp = replace(
        defaults.mntp_training,
        batch_size=params.mntp_batch_size,
        micro_batch_size=min(defaults.mntp_training.micro_batch_size, params.mntp_batch_size),
        budget_s=params.mntp_budget_s,
        precision=params.precision,
    )
    simcse = replace(
        defaults.simcse_training,
        batch_size=params.simcse_batch_size,
        micro_batch_size=params.simcse_batch_size,
        budget_s=params.simcse_budget_s,
        precision=params.precision,
    )
    lora = LoraSettings(rank=params.lora_rank, alpha=2 * params.lora_rank, dropout=defaults.lora.dropout)
    return replace(defaults, model=params.model, lora=lora, mntp_training=mntp, simcse_training=simcse)


class LamiaParams(Config):
    model: str = Field(default=SMOLLM2, description="Decoder (paper: OPT-350M); a local-cache name, folder or hub id.")
    palette_size: int = Field(default=LamiaConfig.palette_size, description="L palette embeddings = codes per item.")
    gamma: float = Field(default=LamiaConfig.gamma, description="Weight of the contrastive losses; 0 = ablation.")
    lora_rank: int = Field(default=16, description="LoRA rank (paper: 128; 16 on a CPU: 1.6x faster steps).")
    batch_size: int = Field(default=32, description="Items per optimizer step (paper: 128).")
    micro_batch_size: int = Field(default=16, description="Items per forward; the inter-palette negatives.")
    lr: float = Field(default=1e-4, description="Adam learning rate (paper: 1e-4).")
    epochs: int = Field(default=1, description="Passes over the items (the budget may stop earlier).")
    budget_s: float = Field(default=3600.0, description="Wall-clock seconds of training (0 = no budget).")
    precision: str = Field(default="auto", description="'auto' (bf16 autocast where native), 'bf16', 'float32'.")


class LamiaPaletteParams(Config):
    inference_batch_size: int = Field(default=32, description="Items per forward pass of palette inference.")


def lamia_settings(params: LamiaParams, template: str) -> LamiaConfig:
    """The data set's LAMIA preset (content and tasks) with the asset's model, sizes, budget and precision."""
    training = replace(
        LamiaConfig().training,
        lr=params.lr,
        batch_size=params.batch_size,
        micro_batch_size=params.micro_batch_size,
        epochs=params.epochs,
        budget_s=params.budget_s,
        precision=params.precision,
    )
    lora = replace(LamiaConfig().lora, rank=params.lora_rank, alpha=2 * params.lora_rank)
    return LamiaConfig.for_template(
        template, model=params.model, palette_size=params.palette_size, gamma=params.gamma, lora=lora, training=training
    )


class LamiaTableParams(Config):
    pca_dim: int = Field(default=LamiaQuantizerConfig.pca_dim, description="PCA components per aspect (paper: 64).")
    codebook_size: int = Field(default=KMeansConfig.codebook_size, description="K-Means codes per aspect (256).")
    seed: int = Field(default=0, description="Aspect j's k-means seed is seed + j.")


def step_logger(context: AssetExecutionContext, run: TrackedRun) -> StepCallback:
    """Every step's loss parts to MLflow (``<phase>/<part>``), every LOG_EVERY_STEPS-th to the Dagster log."""

    def log_step(phase: str, log: StepLog) -> None:
        run.log_metrics(
            flatten_numbers({phase: {"loss": log.loss, **log.parts, "seconds": log.seconds}}), step=log.step
        )
        if log.step == 1 or log.step % LOG_EVERY_STEPS == 0:
            parts = ", ".join(f"{name} {value:.4f}" for name, value in log.parts.items())
            context.log.info(f"{phase} step {log.step} ({log.elapsed_s:.0f} s): loss {log.loss:.4f} ({parts})")

    return log_step


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def llm2vec_model(
    context: AssetExecutionContext,
    config: LLM2VecParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """SmolLM2 (by default) made bidirectional and trained on the item texts by MNTP, then unsupervised SimCSE."""
    settings = llm2vec_settings(config)
    template = TEMPLATES[get_dataset(context.partition_key).text_template]
    params = {"upstream": kcore_dataset.fingerprint, "template": template.identity, **config.model_dump()}
    with tracked_run(context, mlflow, "llm2vec", params) as run:
        output = llm2vec_stage(kcore_dataset, storage.output_path, settings, template, step_logger(context, run))
        return publish(context, run, output)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def llm2vec_embeddings(
    context: AssetExecutionContext,
    config: LLM2VecEmbeddingParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
    llm2vec_model: StageOutput,
) -> Output[StageOutput]:
    """Item vectors from the LLM2Vec-adapted decoder: bidirectional, mean-pooled (the ``llm2vec`` embedder)."""
    model_dir = llm2vec_model.file(llm2vec_model.manifest["model_dir"])
    settings = llm2vec_config(str(model_dir), config.batch_size, config.max_length)
    template = TEMPLATES[get_dataset(context.partition_key).text_template]
    params = {"upstream": kcore_dataset.fingerprint, "llm2vec": llm2vec_model.fingerprint, **asdict(settings)}
    with tracked_run(context, mlflow, "llm2vec_embeddings", params) as run:
        return publish(context, run, embed(kcore_dataset, storage.output_path, settings, template))


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def lamia_model(
    context: AssetExecutionContext,
    config: LamiaParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """The decoder tuned by LAMIA with LoRA (palette tokens, dual forward, contrastive losses), within the budget."""
    settings = lamia_settings(config, get_dataset(context.partition_key).text_template)
    params = {"upstream": kcore_dataset.fingerprint, **config.model_dump()}
    with tracked_run(context, mlflow, "lamia_model", params) as run:
        output = lamia_model_stage(kcore_dataset, storage.output_path, settings, step_logger(context, run))
        return publish(context, run, output)


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def lamia_palettes(
    context: AssetExecutionContext,
    config: LamiaPaletteParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
    lamia_model: StageOutput,
) -> Output[StageOutput]:
    """Every item's palette (L embeddings, flattened) from the merged LAMIA model."""
    params = {"upstream": kcore_dataset.fingerprint, "lamia_model": lamia_model.fingerprint, **config.model_dump()}
    with tracked_run(context, mlflow, "lamia_palettes", params) as run:
        output = lamia_palettes_stage(kcore_dataset, lamia_model, storage.output_path, config.inference_batch_size)
        return publish(context, run, output)


@asset(
    name=table_key(LAMIA).path[-1],
    group_name=SEMANTIC_IDS_GROUP,  # beside every other family's table
    partitions_def=dataset_partitions,
)
def semantic_ids_lamia(
    context: AssetExecutionContext,
    config: LamiaTableParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    lamia_palettes: StageOutput,
) -> Output[StageOutput]:
    """Per-aspect PCA + K-Means of the palettes: the lamia family's Semantic-ID table, in the shared format."""
    settings = LamiaQuantizerConfig(
        palette_size=int(lamia_palettes.manifest["palette_size"]),
        aspect_dim=int(lamia_palettes.manifest["aspect_dim"]),
        pca_dim=config.pca_dim,
        kmeans=KMeansConfig(codebook_size=config.codebook_size),
        seed=config.seed,
    )
    params = {"upstream": lamia_palettes.fingerprint, **config.model_dump()}
    with tracked_run(context, mlflow, SEMANTIC_IDS_STAGE, params, tokenizer=LAMIA) as run:
        _, table = lamia_table_stages(lamia_palettes, storage.output_path, settings, {"mlflow_run_id": run.run_id})
        return publish(context, run, table, table_preview(table), artifacts=(TABLE,))
