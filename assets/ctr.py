"""CTR assets: labelled samples, one CTR model with Semantic-ID features, and the MoC scaling study."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from assets.choices import one_of
from assets.families import TABLE_KEYS, TableChoice, chosen_table, table_metadata
from assets.ingest import dataset_partitions
from assets.pipes import pipes_launch
from assets.publishing import curve_metrics, partition_of, publish, tracked_run
from ops.caching import StageOutput
from ops.compute.ctr_ddp import ddp_train_ctr_stage
from ops.ctr.labels import MODES, LabelConfig
from ops.ctr.models import MODELS
from ops.ctr.stage import CHECKPOINT, HISTORY, TRAIN_STAGE, CTRConfig, ctr_samples_stage, read_samples, train_ctr_stage
from ops.ctr.study import StudyCell, StudyConfig, scaling_study_stage, study_tables
from ops.ctr.train import CTRTrainConfig, EpochCallback
from resources import MlflowTracking, StorageResource
from resources.compute import ComputeResource
from resources.mlflow_tracking import TrackedRun

GROUP = "ctr"
MODEL_FILES = (CHECKPOINT, HISTORY)  # logged to the MLflow run that trained them


class LabelParams(Config):
    mode: one_of(MODES) = Field(  # type: ignore[valid-type]
        default=LabelConfig.mode,
        description=f"One of {list(MODES)}. auto: MIND impressions if present, else ratings if every interaction "
        "has one, else sampled negatives (implicit data such as the Beauty P5 derivative).",
    )
    rating_threshold: float = Field(default=LabelConfig.rating_threshold, description="rating >= threshold -> click.")
    negatives_per_positive: int = Field(
        default=LabelConfig.negatives_per_positive, description="Sampled negatives per positive (sampled once, stored)."
    )
    seed: int = Field(default=LabelConfig.seed, description="Seed of the negative sampling.")


class TrainParams(Config):
    """Training settings shared by the single-model and the study assets."""

    max_epochs: int = Field(default=CTRTrainConfig.max_epochs, description="Upper bound; early stopping ends runs.")
    patience: int = Field(default=CTRTrainConfig.patience, description="Epochs without better validation AUC.")
    batch_size: int = Field(default=CTRTrainConfig.batch_size, description="Rows per Adam step.")
    lr: float = Field(default=CTRTrainConfig.lr, description="Adam learning rate.")

    def train_config(self, seed: int = CTRTrainConfig.seed) -> CTRTrainConfig:
        return CTRTrainConfig(
            batch_size=self.batch_size, lr=self.lr, max_epochs=self.max_epochs, patience=self.patience, seed=seed
        )


class CTRParams(TrainParams, TableChoice):
    backbone: one_of(MODELS) = Field(  # type: ignore[valid-type]
        default=CTRConfig.backbone, description="DeepFM, DeepIM, AutoInt+ or DCNv2."
    )
    use_item_id: bool = Field(default=True, description="False: items are described by attributes + Semantic IDs only.")
    use_semantic_ids: bool = Field(default=True, description="False: the ID-only baseline (no Semantic-ID fields).")
    fusion: bool = Field(default=False, description="MoC bottleneck fusion of the item-side embeddings.")
    seed: int = Field(default=CTRTrainConfig.seed, description="Weights, dropout and shuffling.")
    ddp_processes: int = Field(
        default=0,
        description="0: train in the run's process. N >= 2: N torchrun processes (torch DDP, gloo on CPUs, NCCL on "
        "GPUs) each take a share of every global batch; same checkpoint format, a version of its own.",
    )


class StudyParams(TrainParams):
    backbones: list[str] = Field(
        default=list(StudyConfig.backbones), description="Backbones: deepfm, deepim, autoint, dcnv2."
    )
    kinds: list[str] = Field(
        default=list(StudyConfig.kinds), description="Tokenizer kinds the paper scales: me, rqvae, moc."
    )
    scales: list[int] = Field(default=list(StudyConfig.scales), description="Scaling factors (paper: 1, 2, 3, 7).")
    fusion: list[bool] = Field(default=list(StudyConfig.fusion), description="Fusion settings to run.")
    seeds: list[int] = Field(default=list(StudyConfig.seeds), description="Seeds; tables show mean ± std.")
    include_id_only: bool = Field(default=True, description="Add the ID-only baseline row.")
    use_item_id: bool = Field(default=True, description="False: SID-only items.")
    tokenizer_codebook_size: int = Field(default=256, description="Codes per codebook of every tokenizer (paper: 256).")
    tokenizer_epochs: int = Field(default=300, description="Epochs of every tokenizer the study trains.")
    tokenizer_batch_size: int = Field(default=8012, description="Items per tokenizer step (paper: 8012).")


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def ctr_samples(
    context: AssetExecutionContext,
    config: LabelParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    kcore_dataset: StageOutput,
    dataset_splits: StageOutput,
) -> Output[StageOutput]:
    """Labelled (user, item) rows on the random 8/1/1 split: clicks, rating thresholds or stored sampled negatives."""
    settings = LabelConfig(**config.model_dump())
    params = {"kcore": kcore_dataset.fingerprint, "splits": dataset_splits.fingerprint, **asdict(settings)}
    with tracked_run(context, mlflow, "ctr_samples", params) as run:
        output = ctr_samples_stage(storage.output_path, kcore_dataset, dataset_splits, settings)
        return publish(context, run, output, read_samples(output))


@asset(group_name=GROUP, partitions_def=dataset_partitions, deps=TABLE_KEYS)
def ctr_model(
    context: AssetExecutionContext,
    config: CTRParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    ctr_samples: StageOutput,
    kcore_dataset: StageOutput,
) -> Output[StageOutput]:
    """One CTR backbone trained with early stopping on validation AUC, with the Semantic-ID features of the table
    `tokenizer` names (or none: the ID-only baseline); test AUC and logloss in the metadata."""
    table = chosen_table(context, storage.output_path, config) if config.use_semantic_ids else None
    settings = CTRConfig(
        backbone=config.backbone,
        train=config.train_config(config.seed),
        use_item_id=config.use_item_id,
        fusion=config.fusion,
    )
    params = {
        "samples": ctr_samples.fingerprint,
        "semantic_ids": table.fingerprint if table else None,
        **config.model_dump(),
    }
    tokenizer = table.manifest["tokenizer"]["kind"] if table else "none"
    with tracked_run(context, mlflow, TRAIN_STAGE, params, tokenizer=tokenizer) as run:
        log_epoch = _epoch_logger(context, run)
        if config.ddp_processes >= 2:  # rank 0 streams its log and epochs back through Dagster Pipes
            output = ddp_train_ctr_stage(
                storage.output_path,
                ctr_samples,
                kcore_dataset,
                table,
                settings,
                config.ddp_processes,
                launch_env=lambda: pipes_launch(context, log_epoch),
            )
        else:
            output = train_ctr_stage(storage.output_path, ctr_samples, kcore_dataset, table, settings, log_epoch)
        return publish(context, run, output, artifacts=MODEL_FILES, metadata=table_metadata(table))


@asset(group_name=GROUP, partitions_def=dataset_partitions)
def scaling_study(
    context: AssetExecutionContext,
    config: StudyParams,
    storage: StorageResource,
    mlflow: MlflowTracking,
    compute: ComputeResource,
    kcore_dataset: StageOutput,
    dataset_splits: StageOutput,
    item_embeddings: StageOutput,
) -> Output[StageOutput]:
    """The Mixture-of-Codes scaling study: test AUC (mean ± std over seeds) per backbone x tokenizer x scale
    like the paper's Table 1, and the fusion ablation like its Table 2. Each training run is an MLflow run
    nested under the study's; every tokenizer and model is a cached stage, so a re-run trains only what is new."""
    settings = StudyConfig(
        backbones=tuple(config.backbones),
        kinds=tuple(config.kinds),
        scales=tuple(config.scales),
        fusion=tuple(config.fusion),
        seeds=tuple(config.seeds),
        include_id_only=config.include_id_only,
        use_item_id=config.use_item_id,
        tokenizer_settings={
            "vq": {"codebook_size": config.tokenizer_codebook_size},
            "train": {"epochs": config.tokenizer_epochs, "batch_size": config.tokenizer_batch_size},
        },
        train=config.train_config(),
    )
    params = {"embeddings": item_embeddings.fingerprint, "splits": dataset_splits.fingerprint, **config.model_dump()}
    with tracked_run(context, mlflow, "scaling_study", params) as run:

        @contextmanager
        def nested_run(cell: StudyCell) -> Iterator[EpochCallback]:
            context.log.info(f"study run {cell.name}")
            cell_params = {"study_run": run.run_id, **vars(cell)}
            name = f"{TRAIN_STAGE}:{cell.kind}:{partition_of(context)}:{cell.name}"
            tags = {"dataset": partition_of(context), "tokenizer": "none" if cell.kind == "id" else cell.kind}
            with mlflow.start_run(name, TRAIN_STAGE, cell_params, tags, parent_run_id=run.run_id) as child:
                yield _epoch_logger(context, child)

        with compute.executor() as executor:  # cells run where the compute resource says (in process by default)
            output = scaling_study_stage(
                storage.output_path, kcore_dataset, dataset_splits, item_embeddings, settings, nested_run, executor
            )
        first, second = study_tables(output)
        context.log.info(f"Table 1 (test AUC):\n{first}\nTable 2 (fusion ablation):\n{second}")
        return publish(context, run, output, first)


def _epoch_logger(context: AssetExecutionContext, run: TrackedRun) -> EpochCallback:
    def log_epoch(values: dict[str, Any]) -> None:
        metrics = curve_metrics(values)
        run.log_metrics(metrics, step=int(values["epoch"]))
        context.log.info(", ".join(f"{key} {value:.4g}" for key, value in metrics.items()))

    return log_epoch
