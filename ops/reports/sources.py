"""Which published stage versions a data set's report reads: found by their manifests, never by config.

A report is about one (k-core, splits, embeddings) triple. Each downstream version names what it read in its
manifest, and the report follows those names:

- a Semantic-ID table names its embeddings version;
- a CTR model names its samples version (which names the k-core and splits) and its table (None = ID only);
- a Semantic-ID recommender's evaluation (TIGER, the decoder-only model) names its table and its model (which
  names the splits);
- a Semantic-ID stability comparison names the two table versions it compared (the report keeps those whose
  newer version is one of its tables);
- a SASRec model names its splits where its manifest records them; older manifests do not, and are matched by
  the catalogue size and number of test users of the leave-one-out split instead.

Only complete versions (a manifest exists) are read, so a stage being built is never half-seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.caching import StageOutput, is_complete, read_manifest

SEMANTIC_IDS = "semantic_ids"
SEMANTIC_ID_CHANGES = "semantic_id_changes"
TOKENIZER = "tokenizer"
CTR_SAMPLES = "ctr_samples"
CTR_MODEL = "ctr_model"
TIGER_EVAL = "tiger_eval"
DECODER_EVAL = "decoder_eval"
SASREC = "sasrec"
SID_MODELS = {TIGER_EVAL: "TIGER", DECODER_EVAL: "Decoder"}  # evaluation stage -> the model's name in the report
KIND_NAMES = {
    "vqvae": "VQ-VAE",
    "rqvae": "RQ-VAE",
    "rqkmeans": "RQ-KMeans",
    "moc": "MoC",
    "me": "ME",
    "lamia": "LAMIA",
}  # how the report names each tokenizer kind; an unknown kind is shown as spelled in its manifest


@dataclass(frozen=True)
class TableSource:
    """One Semantic-ID table version and the name the report gives it ("RQ-VAE 3x256")."""

    stage: StageOutput
    label: str

    @property
    def kind(self) -> str:
        return str(self.stage.manifest.get("tokenizer", {}).get("kind", "unknown"))

    @property
    def scale(self) -> int:
        return int(self.stage.manifest.get("scaling_factor", 1))

    @property
    def codebook_size(self) -> int:
        return int(self.stage.manifest["codebook_size"])


@dataclass(frozen=True)
class ReportSources:
    """Every version one report reads."""

    kcore: StageOutput
    splits: StageOutput
    embeddings: StageOutput
    tables: tuple[TableSource, ...]
    ctr_models: tuple[StageOutput, ...]
    sid_evals: tuple[StageOutput, ...]  # TIGER and decoder-only evaluations
    sid_models: Mapping[str, StageOutput]  # fingerprint -> the trained model each evaluation names
    sasrec: tuple[StageOutput, ...]
    sasrec_by_counts: tuple[str, ...]  # fingerprints of SASRec versions matched by counts, not by splits
    most_popular: StageOutput  # the most-popular baseline's version for these splits
    changes: tuple[StageOutput, ...] = ()  # Semantic-ID stability: comparisons ending at one of ``tables``

    def fingerprints(self) -> dict[str, Any]:
        """What the report's version hashes: every version it read."""
        return {
            "kcore": self.kcore.fingerprint,
            "splits": self.splits.fingerprint,
            "embeddings": self.embeddings.fingerprint,
            "semantic_ids": [table.stage.fingerprint for table in self.tables],
            "ctr_model": [stage.fingerprint for stage in self.ctr_models],
            "sid_evals": [f"{stage.stage}/{stage.fingerprint}" for stage in self.sid_evals],
            "sasrec": [stage.fingerprint for stage in self.sasrec],
            "most_popular": self.most_popular.fingerprint,
            "semantic_id_changes": [stage.fingerprint for stage in self.changes],
        }

    def label_of(self, table_fingerprint: str | None) -> str:
        """The report's name for a table version; "ID only" for no table."""
        if table_fingerprint is None:
            return "ID only"
        return next(table.label for table in self.tables if table.stage.fingerprint == table_fingerprint)


def complete_versions(output_root: Path, stage: str) -> list[StageOutput]:
    """Every published version of ``stage`` under ``output_root``, by fingerprint (a stable order)."""
    folder = Path(output_root) / stage
    if not folder.is_dir():
        return []
    versions = sorted(path for path in folder.iterdir() if not path.name.startswith(".") and is_complete(path))
    return [StageOutput(stage, path.name, str(path), read_manifest(path), cache_hit=True) for path in versions]


def find_sources(
    output_root: Path,
    kcore: StageOutput,
    splits: StageOutput,
    embeddings: StageOutput,
    most_popular: StageOutput,
) -> ReportSources:
    """The table, CTR, retrieval and baseline versions that belong to this (k-core, splits, embeddings)."""
    tables = table_sources(
        stage
        for stage in complete_versions(output_root, SEMANTIC_IDS)
        if stage.manifest.get("embeddings", {}).get("fingerprint") == embeddings.fingerprint
    )
    known_tables = {table.stage.fingerprint for table in tables}
    samples = {
        stage.fingerprint
        for stage in complete_versions(output_root, CTR_SAMPLES)
        if stage.manifest.get("kcore") == kcore.fingerprint and stage.manifest.get("splits") == splits.fingerprint
    }
    ctr_models = tuple(
        stage
        for stage in complete_versions(output_root, CTR_MODEL)
        if stage.manifest.get("samples") in samples and _table_of_ctr(stage) in known_tables | {None}
    )
    sid_evals, sid_models = _sid_evaluations(output_root, known_tables, splits)
    sasrec, by_counts = _sasrec(output_root, splits, most_popular)
    changes = tuple(
        stage
        for stage in complete_versions(output_root, SEMANTIC_ID_CHANGES)
        if stage.manifest["after"] in known_tables
    )
    return ReportSources(
        kcore=kcore,
        splits=splits,
        embeddings=embeddings,
        tables=tables,
        ctr_models=ctr_models,
        sid_evals=sid_evals,
        sid_models=sid_models,
        sasrec=sasrec,
        sasrec_by_counts=by_counts,
        most_popular=most_popular,
        changes=changes,
    )


def table_sources(stages: Iterable[StageOutput]) -> tuple[TableSource, ...]:
    """Tables ordered by kind, scale and codebook size, named "<kind> <scale>x<codebook size>"; a name shared by
    several versions (another seed or epoch count) gets the version's first 6 fingerprint characters."""

    def key(stage: StageOutput) -> tuple[Any, ...]:
        kind = stage.manifest.get("tokenizer", {}).get("kind", "")
        order = list(KIND_NAMES).index(kind) if kind in KIND_NAMES else len(KIND_NAMES)
        return order, kind, stage.manifest.get("scaling_factor", 1), stage.manifest["codebook_size"], stage.fingerprint

    ordered = sorted(stages, key=key)
    names = [_base_label(stage) for stage in ordered]
    return tuple(
        TableSource(stage, name if names.count(name) == 1 else f"{name} ({stage.fingerprint[:6]})")
        for stage, name in zip(ordered, names, strict=True)
    )


def _base_label(stage: StageOutput) -> str:
    kind = str(stage.manifest.get("tokenizer", {}).get("kind", "unknown"))
    return f"{KIND_NAMES.get(kind, kind)} {stage.manifest.get('scaling_factor', 1)}x{stage.manifest['codebook_size']}"


def _table_of_ctr(stage: StageOutput) -> str | None:
    table = stage.manifest.get("semantic_ids")
    return None if table is None else table.get("fingerprint")


def _sid_evaluations(
    output_root: Path, tables: set[str], splits: StageOutput
) -> tuple[tuple[StageOutput, ...], dict[str, StageOutput]]:
    """Evaluations of a known table by a model trained on ``splits``, and those models by fingerprint."""
    evaluations, models = [], {}
    for name in SID_MODELS:
        for evaluation in complete_versions(output_root, name):
            named = evaluation.manifest.get("model", {})
            folder = Path(output_root) / str(named.get("stage")) / str(named.get("fingerprint"))
            if evaluation.manifest.get("sid_table", {}).get("fingerprint") not in tables or not is_complete(folder):
                continue
            model = StageOutput(named["stage"], named["fingerprint"], str(folder), read_manifest(folder), True)
            if model.manifest.get("splits") == splits.fingerprint:
                evaluations.append(evaluation)
                models[model.fingerprint] = model
    return tuple(evaluations), models


def _sasrec(
    output_root: Path, splits: StageOutput, most_popular: StageOutput
) -> tuple[tuple[StageOutput, ...], tuple[str, ...]]:
    """SASRec versions of ``splits`` and, of those, the ones matched by counts: a manifest without its splits is
    matched by the catalogue size and test users the most-popular baseline counted on ``splits``."""
    counts = (most_popular.manifest["n_items"], most_popular.manifest["n_test_users"])
    found, by_counts = [], []
    for stage in complete_versions(output_root, SASREC):
        if "splits" in stage.manifest:
            if stage.manifest["splits"] == splits.fingerprint:
                found.append(stage)
        elif (stage.manifest.get("n_items"), stage.manifest.get("n_test_users")) == counts:
            found.append(stage)
            by_counts.append(stage.fingerprint)
    return tuple(found), tuple(by_counts)
