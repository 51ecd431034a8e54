"""The CTR stages as cached functions: samples (labels, negatives) once per data set, then one training run.

`ctr_samples_stage` hashes (k-core version, splits version, label config, labels code) and stores the samples,
so sampled negatives are drawn once and shared by every model. `train_ctr_stage` hashes (samples, k-core,
Semantic-ID table version, CTR config, CTR code) and stores the checkpoint (config + features + weights), the
per-epoch history and a manifest with the test metrics and the exact table version it read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn

from ops.caching import StageOutput, code_version, file_digest, fingerprint, run_cached
from ops.ctr.data import CTRData
from ops.ctr.features import EncodedFeatures, FeatureConfig, FeatureSpec, SemanticIds, encode_features
from ops.ctr.labels import LabelConfig, build_samples
from ops.ctr.models import ModelConfig, build_model, default_config, model_config_from_dict
from ops.ctr.train import CTRTrainConfig, EpochCallback, fit
from ops.device import placement
from ops.quantizers.config import config_from_dict, config_to_dict
from ops.semantic_ids.stage import read_table
from ops.tables import read_parquet, write_atomic, write_parquet_atomic, write_text_atomic

CTR_CODE = Path(__file__).resolve().parent
SAMPLES_STAGE = "ctr_samples"
TRAIN_STAGE = "ctr_model"
SAMPLES = "samples.parquet"
CHECKPOINT = "model.pt"
HISTORY = "history.json"
SPLIT_TABLE = "random.parquet"  # the ingestion stage's seeded 8/1/1 split


@dataclass(frozen=True)
class CTRConfig:
    backbone: str = "dcnv2"  # deepfm | deepim | autoint | dcnv2
    model: ModelConfig | None = None  # None: the backbone's default config
    train: CTRTrainConfig = field(default_factory=CTRTrainConfig)  # Adam 3e-3, batch 4096, patience 2
    use_item_id: bool = True  # False: SID-only items (attributes + Semantic IDs)
    fusion: bool = False  # MoC bottleneck fusion of the item-side fields
    price_buckets: int = FeatureConfig.price_buckets  # quantile price buckets

    def resolved_model(self) -> ModelConfig:
        return self.model if self.model is not None else default_config(self.backbone)

    def to_dict(self) -> dict[str, Any]:
        return {**config_to_dict(dataclasses.replace(self, model=None)), "model": config_to_dict(self.resolved_model())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CTRConfig:
        train = config_from_dict(CTRTrainConfig, data["train"])
        model = model_config_from_dict(data["backbone"], data["model"])
        rest = {key: value for key, value in data.items() if key not in ("train", "model")}
        return cls(**rest, model=model, train=train)

    @classmethod
    def test(cls, backbone: str = "dcnv2", **overrides: Any) -> CTRConfig:
        tiny = cls(backbone, default_config(backbone, test=True), CTRTrainConfig.test())
        return dataclasses.replace(tiny, **overrides)


def ctr_samples_stage(output_root: Path, kcore: StageOutput, splits: StageOutput, config: LabelConfig) -> StageOutput:
    """samples.parquet (user_id, item_id, label, split) for the k-core's random split, cached.

    The version hashes only what the samples are built from (the split and, for MIND, the impressions' bytes),
    not the whole k-core: an edit of item text leaves the samples, and every CTR label, as they were.
    """
    impressions_file = kcore.file("impressions.parquet")
    impressions_digest = file_digest(impressions_file) if impressions_file.is_file() else None
    stage_fingerprint = fingerprint(
        {
            "dataset": kcore.manifest.get("dataset"),
            "impressions": impressions_digest,
            "splits": splits.fingerprint,
            "config": dataclasses.asdict(config),
            "code": code_version(CTR_CODE / "labels.py"),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        impressions = read_parquet(impressions_file) if impressions_digest is not None else None
        samples, mode = build_samples(config, read_parquet(splits.file(SPLIT_TABLE)), impressions)
        write_parquet_atomic(samples, folder / SAMPLES)
        counts = samples.group_by("split", "label").len().sort("split", "label")
        return {
            "dataset": kcore.manifest.get("dataset"),
            "label_mode": mode,
            "config": dataclasses.asdict(config),
            "rows": samples.height,
            "counts": {f"{row['split']}/{row['label']}": row["len"] for row in counts.iter_rows(named=True)},
            "kcore": kcore.fingerprint,
            "impressions_sha256": impressions_digest,
            "splits": splits.fingerprint,
        }

    return run_cached(output_root, SAMPLES_STAGE, stage_fingerprint, build)


def read_samples(stage: StageOutput) -> pl.DataFrame:
    return read_parquet(stage.file(SAMPLES))


def training_inputs(
    samples: StageOutput, kcore: StageOutput, sid_table: StageOutput | None, config: CTRConfig
) -> dict[str, Any]:
    """What a CTR model's version depends on besides its code: the rows, the items, the table and the config."""
    return {
        "samples": samples.fingerprint,
        "kcore": kcore.fingerprint,
        "semantic_ids": sid_table.fingerprint if sid_table is not None else None,
        "config": config.to_dict(),
    }


def training_data(
    samples: StageOutput, kcore: StageOutput, sid_table: StageOutput | None, config: CTRConfig, device: torch.device
) -> tuple[EncodedFeatures, CTRData]:
    """The samples' feature matrix (item features from the k-core, Semantic-ID fields from ``sid_table`` when given)
    and the splits as tensors on ``device``: what every CTR training process reads."""
    rows = read_samples(samples)
    semantic_ids = SemanticIds.from_table(read_table(sid_table), sid_table.manifest) if sid_table else None
    items = read_parquet(kcore.file("items.parquet"))
    encoded = encode_features(rows, items, semantic_ids, FeatureConfig(config.use_item_id, config.price_buckets))
    return encoded, CTRData.from_matrix(encoded.matrix, rows, device)


def train_ctr_stage(
    output_root: Path,
    samples: StageOutput,
    kcore: StageOutput,
    sid_table: StageOutput | None,
    config: CTRConfig,
    callback: EpochCallback | None = None,
) -> StageOutput:
    """Train (or find cached) one CTR model on the samples, with the Semantic-ID fields of ``sid_table``."""
    stage_fingerprint = fingerprint({**training_inputs(samples, kcore, sid_table, config), "code": _training_code()})

    def build(folder: Path) -> dict[str, Any]:
        encoded, data = training_data(samples, kcore, sid_table, config, placement().device)
        model_config = config.resolved_model()
        model, result = fit(
            lambda: build_model(config.backbone, model_config, encoded.features, config.fusion),
            data,
            config.train,
            callback,
        )
        save_checkpoint(model, config, encoded.features, folder / CHECKPOINT)
        write_text_atomic(folder / HISTORY, json.dumps(result.history, indent=1))
        return {
            "backbone": config.backbone,
            "config": config.to_dict(),
            "test_auc": result.test_auc,
            "test_logloss": result.test_logloss,
            "valid_auc": result.valid_auc,
            "epochs": len(result.history),
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.train_seconds, 3),
            "samples_per_second": round(result.samples_per_second, 1),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "features": [dataclasses.asdict(feature) for feature in encoded.features],
            "rows": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
            "samples": samples.fingerprint,
            "semantic_ids": _table_provenance(sid_table),
        }

    return run_cached(output_root, TRAIN_STAGE, stage_fingerprint, build)


def save_checkpoint(model: nn.Module, config: CTRConfig, features: list[FeatureSpec], path: Path) -> None:
    """``{"config", "features", "state_dict"}`` in plain data: the model is rebuilt from the file alone."""
    payload = {
        "config": config.to_dict(),
        "features": [dataclasses.asdict(feature) for feature in features],
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
    }
    write_atomic(path, lambda temporary: torch.save(payload, temporary))


def load_checkpoint(path: Path) -> tuple[nn.Module, CTRConfig, list[FeatureSpec]]:
    """(model in eval mode on the CPU, its config, its features); ``weights_only=True`` runs no pickled code."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = CTRConfig.from_dict(payload["config"])
    features = [FeatureSpec(**feature) for feature in payload["features"]]
    model = build_model(config.backbone, config.resolved_model(), features, config.fusion)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), config, features


def _table_provenance(sid_table: StageOutput | None) -> dict[str, Any] | None:
    if sid_table is None:
        return None
    manifest = sid_table.manifest
    return {
        "fingerprint": sid_table.fingerprint,
        "kind": manifest["tokenizer"]["kind"],
        "scaling_factor": manifest["scaling_factor"],
        "version": manifest["version"],
        "codebook_size": manifest["codebook_size"],
    }


def _training_code() -> str:
    """Every CTR module except the study driver and the labels (their edits do not change a trained model)."""
    sources = sorted(path for path in CTR_CODE.glob("*.py") if path.name not in ("study.py", "labels.py"))
    return code_version(*sources)
