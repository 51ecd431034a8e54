"""The MoC scaling study: backbones x tokenizer kinds x scaling factors x fusion x seeds, and its two tables.

Every cell goes through the cached stages (tokenizer -> Semantic-ID table -> CTR model), so re-running a
study only trains what is missing. Scale 1 is one cell per backbone and seed: RQ-VAE with one level, i.e. a
VQ-VAE -- the single code every method starts from (the paper's Table 1 shows only RQ-VAE at 1x), trained
without fusion. An ID-only row (no Semantic IDs) gives the floor.

Table 1 follows the paper: ME and RQ-VAE rows without fusion, MoC rows with it (Table 2's "w/" column for
MoC equals Table 1's MoC row, and its "w/o" column for RQ-VAE equals Table 1's RQ-VAE row).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.compute import Executor, LocalExecutor
from ops.ctr.labels import LabelConfig
from ops.ctr.models import default_config
from ops.ctr.stage import CTR_CODE, HISTORY, CTRConfig, ctr_samples_stage, train_ctr_stage
from ops.ctr.train import CTRTrainConfig, EpochCallback
from ops.pipeline import semantic_id_version
from ops.quantizers.kinds import scaled_config
from ops.quantizers.stage import QUANTIZERS_CODE
from ops.semantic_ids.stage import SEMANTIC_IDS_CODE
from ops.tables import read_parquet, write_parquet_atomic

ID_ONLY = "id"  # kind of the baseline cell without Semantic IDs
STUDY_STAGE = "ctr_study"
RESULTS = "results.parquet"
RESULT_COLUMNS = (
    "backbone", "kind", "scale", "fusion", "seed",
    "test_auc", "test_logloss", "valid_auc", "epochs", "seconds", "samples_per_s",
)  # fmt: skip


@dataclass(frozen=True)
class StudyConfig:
    backbones: tuple[str, ...] = ("deepfm", "deepim", "autoint", "dcnv2")  # the paper's four
    kinds: tuple[str, ...] = ("me", "rqvae", "moc")  # the paper's three ways to scale
    scales: tuple[int, ...] = (1, 2, 3, 7)  # the paper's scaling factors; 1 runs once, as 1-level RQ-VAE
    fusion: tuple[bool, ...] = (False, True)  # both: Table 1 needs MoC w/, Table 2 both for every kind
    seeds: tuple[int, ...] = (0, 1, 2)  # the paper averages three seeds
    include_id_only: bool = True  # the ID-only baseline row
    use_item_id: bool = True  # ID + SID (False: SID-only items)
    tokenizer_settings: dict[str, Any] = field(default_factory=dict)  # config_to_dict-style tokenizer overrides
    labels: LabelConfig = field(default_factory=LabelConfig)  # auto: sampled 1:1 negatives on Beauty
    train: CTRTrainConfig = field(default_factory=CTRTrainConfig)  # seed is replaced per cell
    test_models: bool = False  # the backbones' tiny test presets (for tests)

    def __post_init__(self) -> None:
        for name in ("backbones", "kinds", "scales", "fusion", "seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def test(cls) -> StudyConfig:
        return cls(
            backbones=("deepfm",),
            kinds=("moc",),
            scales=(1, 2),
            fusion=(False, True),
            seeds=(0,),
            tokenizer_settings={
                "vq": {"codebook_size": 16, "kmeans_iters": 5},
                "autoencoder": {"hidden": [32], "latent_dim": 8},
                "train": {"epochs": 3, "batch_size": 64, "lr": 0.01, "seed": 0},
            },
            train=CTRTrainConfig.test(),
            test_models=True,
        )


@dataclass(frozen=True)
class StudyCell:
    """One CTR training run of the study."""

    backbone: str
    kind: str  # "id", "me", "rqvae", "moc"
    scale: int  # 0 for the ID-only cell
    fusion: bool
    seed: int

    @property
    def name(self) -> str:
        return f"{self.backbone}-{self.kind}-{self.scale}x-{'fusion' if self.fusion else 'plain'}-seed{self.seed}"


CellHook = Callable[[StudyCell], AbstractContextManager[EpochCallback | None]]


def study_cells(config: StudyConfig) -> list[StudyCell]:
    """Every run of the study, in a stable order."""
    cells = []
    for backbone in config.backbones:
        for seed in config.seeds:
            if config.include_id_only:
                cells.append(StudyCell(backbone, ID_ONLY, 0, False, seed))
            if 1 in config.scales:
                cells.append(StudyCell(backbone, "rqvae", 1, False, seed))
            for kind in config.kinds:
                for scale in (s for s in config.scales if s > 1):
                    cells.extend(StudyCell(backbone, kind, scale, fusion, seed) for fusion in config.fusion)
    return cells


def run_study(
    output_root: Path,
    kcore: StageOutput,
    splits: StageOutput,
    embeddings: StageOutput,
    config: StudyConfig,
    cell_hook: CellHook | None = None,
    executor: Executor | None = None,
) -> pl.DataFrame:
    """Train every cell (cached) and return one row per run (`RESULT_COLUMNS`).

    The Semantic-ID tables are built first, in this process (cells share them). The cells then run on
    ``executor``: in this process, one after another (the default), or as parallel tasks (Ray), where a task whose
    worker dies is simply run again (its cell is a cached stage: the dead build's leftovers are cleaned, a
    finished cell is a hit). ``cell_hook`` wraps each cell; with a remote executor it hears the epochs of a
    cell trained this time after the cell ends (from its history), since the training ran in another process.
    """
    samples = ctr_samples_stage(output_root, kcore, splits, config.labels)
    cells = study_cells(config)
    tables: dict[tuple[str, int], StageOutput] = {}
    for cell in cells:
        if cell.kind != ID_ONLY and (cell.kind, cell.scale) not in tables:
            tokenizer_config = scaled_config(cell.kind, cell.scale, config.tokenizer_settings)
            tables[cell.kind, cell.scale] = semantic_id_version(output_root, embeddings, tokenizer_config)[1]
    jobs = [
        _CellJob(output_root, samples, kcore, tables.get((cell.kind, cell.scale)), _ctr_config(cell, config))
        for cell in cells
    ]
    hook = cell_hook or _no_hook
    if executor is None or isinstance(executor, LocalExecutor):
        outputs = []
        for cell, job in zip(cells, jobs, strict=True):
            with hook(cell) as on_epoch:
                outputs.append(job(on_epoch))
    else:
        outputs = []
        for cell, output in zip(cells, executor.map(_CellJob.__call__, jobs), strict=True):
            with hook(cell) as on_epoch:
                if on_epoch is not None and not output.cache_hit:
                    for log in json.loads(output.file(HISTORY).read_text()):
                        on_epoch(log)
            outputs.append(output)
    return pl.DataFrame([_result_row(cell, output.manifest) for cell, output in zip(cells, outputs, strict=True)])


@dataclass(frozen=True)
class _CellJob:
    """One cell's cached CTR training: a plain picklable value, so it can run in another process."""

    output_root: Path
    samples: StageOutput
    kcore: StageOutput
    table: StageOutput | None
    config: CTRConfig

    def __call__(self, on_epoch: EpochCallback | None = None) -> StageOutput:
        return train_ctr_stage(self.output_root, self.samples, self.kcore, self.table, self.config, on_epoch)


def _ctr_config(cell: StudyCell, config: StudyConfig) -> CTRConfig:
    return CTRConfig(
        backbone=cell.backbone,
        model=default_config(cell.backbone, test=config.test_models),
        train=replace(config.train, seed=cell.seed),
        use_item_id=config.use_item_id,
        fusion=cell.fusion,
    )


def _result_row(cell: StudyCell, manifest: dict[str, Any]) -> dict[str, Any]:
    row = {
        **vars(cell),
        "test_auc": manifest["test_auc"],
        "test_logloss": manifest["test_logloss"],
        "valid_auc": manifest["valid_auc"],
        "epochs": manifest["epochs"],
        "seconds": manifest["train_seconds"],
        "samples_per_s": manifest["samples_per_second"],
    }
    return {column: row[column] for column in RESULT_COLUMNS}


def scaling_study_stage(
    output_root: Path,
    kcore: StageOutput,
    splits: StageOutput,
    embeddings: StageOutput,
    config: StudyConfig,
    cell_hook: CellHook | None = None,
    executor: Executor | None = None,
) -> StageOutput:
    """`run_study` as a cached stage: results.parquet (one row per run) and both tables in the manifest.

    Every cell is a cached stage of its own, so a changed study config re-trains only its new cells. The
    executor is not part of the version: every executor gives the same results.
    """
    stage_fingerprint = fingerprint(
        {
            "kcore": kcore.fingerprint,
            "splits": splits.fingerprint,
            "embeddings": embeddings.fingerprint,
            "config": asdict(config),
            "code": code_version(CTR_CODE, QUANTIZERS_CODE, SEMANTIC_IDS_CODE),
        }
    )

    def build(folder: Path) -> dict[str, Any]:
        results = run_study(output_root, kcore, splits, embeddings, config, cell_hook, executor)
        write_parquet_atomic(results, folder / RESULTS)
        first, second = table1(results), table2(results)
        tables = {"table1": first.to_dicts(), "table2": second.to_dicts()}
        return {"runs": results.height, "config": asdict(config), **tables}

    return run_cached(output_root, STUDY_STAGE, stage_fingerprint, build)


def study_results(stage: StageOutput) -> pl.DataFrame:
    return read_parquet(stage.file(RESULTS))


def study_tables(stage: StageOutput) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(Table 1, Table 2) of a study stage version."""
    results = study_results(stage)
    return table1(results), table2(results)


@contextlib.contextmanager
def _no_hook(cell: StudyCell) -> Iterator[None]:
    yield None


def table1(results: pl.DataFrame, fused_kinds: tuple[str, ...] = ("moc",)) -> pl.DataFrame:
    """Test AUC "mean ± std" over seeds: rows backbone x kind (+ ID only), columns the scales ("1x", ...).

    Kinds in ``fused_kinds`` are read with fusion, the others without, as in the paper's Table 1; the 1x
    column is the 1-level RQ-VAE cell, and the ID-only row has its value in the 1x column.
    """
    read_fused = pl.col("fusion") == pl.col("kind").is_in(list(fused_kinds))
    chosen = results.filter((pl.col("kind") == ID_ONLY) | (pl.col("scale") == 1) | read_fused)
    cells = _summaries(chosen, ["backbone", "kind", "scale"]).with_columns(
        column=pl.when(pl.col("kind") == ID_ONLY).then(pl.lit("1x")).otherwise(pl.col("scale").cast(pl.String) + "x")
    )
    columns = [f"{scale}x" for scale in sorted(set(results.filter(pl.col("scale") > 0)["scale"].to_list()))]
    return _pivot(cells, ["backbone", "kind"], columns)


def table2(results: pl.DataFrame) -> pl.DataFrame:
    """Fusion ablation, test AUC "mean ± std": rows backbone x kind, columns "<scale>x w/o", "<scale>x w/"."""
    chosen = results.filter(pl.col("scale") > 1)
    mode = pl.when(pl.col("fusion")).then(pl.lit("w/")).otherwise(pl.lit("w/o"))
    cells = _summaries(chosen, ["backbone", "kind", "scale", "fusion"]).with_columns(
        column=pl.col("scale").cast(pl.String) + "x " + mode
    )
    columns = [f"{scale}x {mode}" for scale in sorted(set(chosen["scale"].to_list())) for mode in ("w/o", "w/")]
    return _pivot(cells, ["backbone", "kind"], columns)


def _summaries(results: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """ "mean ± std" of test AUC per group (sample std over seeds; a single seed shows the mean alone)."""
    grouped = results.group_by(keys).agg(mean=pl.col("test_auc").mean(), std=pl.col("test_auc").std(), n=pl.len())
    text = [
        f"{mean:.4f}" if n < 2 else f"{mean:.4f} ± {std:.4f}"
        for mean, std, n in grouped.select("mean", "std", "n").iter_rows()
    ]
    return grouped.with_columns(value=pl.Series(text, dtype=pl.String))


def _pivot(cells: pl.DataFrame, index: list[str], columns: list[str]) -> pl.DataFrame:
    wide = cells.pivot(on="column", index=index, values="value", aggregate_function="first")
    for column in columns:
        if column not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.String).alias(column))
    order = {kind: i for i, kind in enumerate((ID_ONLY, "me", "rqvae", "moc"))}
    wide = wide.with_columns(_order=pl.col("kind").replace_strict(order, default=len(order))).sort("backbone", "_order")
    return wide.select(*index, *columns)
