"""Checks of the tables and numbers the pipeline publishes, as plain functions (the Dagster asset checks call them).

Each check has a pure form over frames and arrays and a ``check_*`` form over a stage version (what an asset
check calls). Each returns an `Outcome` whose message says what is wrong, how many rows, which ones (a few examples), and
what to change, so a failed check in the UI is actionable without reading code:

- `unique_semantic_ids`: (codes, collision_suffix) names exactly one item -- else a generated ID is ambiguous;
- `code_usage`: every level uses at least a fraction of the codes it could use -- else the codebook collapsed;
- `rows_match_embeddings`: the table has exactly the embedded items -- else items lack IDs or IDs lack items;
- `finite_embeddings`: no NaN or inf in any item vector -- else every tokenizer downstream trains on garbage;
- `metrics_in_unit_interval`: AUCs, recalls and NDCGs lie in [0, 1] -- else the evaluation is broken.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ops.caching import StageOutput, existing_version
from ops.ctr.study import STUDY_STAGE, StudyCell, study_results
from ops.diagnostics.usage import code_counts
from ops.embeddings.stage import TABLE as EMBEDDINGS_TABLE
from ops.embeddings.stage import read_embeddings
from ops.reports.sources import CTR_MODEL, DECODER_EVAL, SASREC, TIGER_EVAL
from ops.semantic_ids.stage import read_table
from ops.semantic_ids.table import table_codes
from ops.tables import read_parquet

EMBEDDINGS_STAGE = "embeddings"

EXAMPLES = 3  # offending rows named in a message


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    metadata: dict[str, float | int | str] = field(default_factory=dict)


def unique_semantic_ids(table: pl.DataFrame) -> Outcome:
    """Every (codes, collision_suffix) pair belongs to one item."""
    keyed = table.with_columns(key=pl.col("codes").cast(pl.List(pl.String)).list.join(" "))
    shared = (
        keyed.group_by("key", "collision_suffix")
        .agg(pl.col("item_id").sort(), pl.len().alias("n"))
        .filter(pl.col("n") > 1)
        .sort("n", "key", descending=[True, False])
    )
    rows = int(shared["n"].sum()) if len(shared) else 0
    metadata = {"rows": len(table), "ambiguous_ids": len(shared), "ambiguous_rows": rows}
    if shared.is_empty():
        return Outcome(True, f"All {len(table):,} Semantic IDs (codes + suffix) are unique.", metadata)
    examples = "; ".join(
        f"codes [{row['key']}] suffix {row['collision_suffix']} -> {', '.join(row['item_id'][:EXAMPLES])}"
        for row in shared.head(EXAMPLES).iter_rows(named=True)
    )
    return Outcome(
        False,
        f"{len(shared):,} Semantic IDs (codes + collision_suffix) name more than one item ({rows:,} of "
        f"{len(table):,} rows), e.g. {examples}. A generated ID could not be mapped back to one item. The suffixes "
        "were not assigned by semid's table builder (or the file was edited): rebuild the table by re-materializing "
        "the Semantic-ID asset, and never edit a published version in place.",
        metadata,
    )


def code_usage(table: pl.DataFrame, codebook_size: int, min_usage: float) -> Outcome:
    """Every level uses at least ``min_usage`` of the codes it could use: min(codebook size, items)."""
    codes = table_codes(table)  # (n, levels)
    attainable = max(1, min(codebook_size, len(table)))
    used = [int((code_counts(codes[:, level], codebook_size) > 0).sum()) for level in range(codes.shape[1])]
    share = [count / attainable for count in used]
    metadata: dict[str, float | int | str] = {
        "min_usage": float(min(share, default=0.0)),
        "threshold": min_usage,
        "attainable_codes": attainable,
        **{f"level_{level + 1}_codes_used": count for level, count in enumerate(used)},
    }
    low = [
        (level, count, value) for level, (count, value) in enumerate(zip(used, share, strict=True)) if value < min_usage
    ]
    if not low:
        return Outcome(
            True,
            f"Every level uses >= {min_usage:.0%} of its {attainable} attainable codes "
            f"(lowest {min(share, default=0.0):.0%}).",
            metadata,
        )
    levels = "; ".join(f"level {level + 1} uses {count} ({value:.0%})" for level, count, value in low)
    return Outcome(
        False,
        f"{len(low)} of {len(used)} levels use fewer than {min_usage:.0%} of the {attainable} codes they could use "
        f"(codebook size {codebook_size}, {len(table):,} items): {levels}. The codebook collapsed, so items crowd "
        "into few codes (more collisions, less information per ID). Retrain the tokenizer with more epochs, a lower "
        "learning rate, codebook_update='ema' or a smaller codebook_size; or lower this check's min_usage if so few "
        "codes are expected here.",
        metadata,
    )


def rows_match_embeddings(table: pl.DataFrame, embedded: Sequence[str]) -> Outcome:
    """The table's items are exactly the embedded items, each once."""
    in_table = table["item_id"].to_list()
    missing = sorted(set(embedded) - set(in_table))
    extra = sorted(set(in_table) - set(embedded))
    repeated = len(in_table) - len(set(in_table))
    metadata = {
        "table_rows": len(in_table),
        "embedded_items": len(embedded),
        "missing": len(missing),
        "extra": len(extra),
        "repeated": repeated,
    }
    if not (missing or extra or repeated):
        return Outcome(True, f"The table has one row for each of the {len(embedded):,} embedded items.", metadata)
    problems = []
    if missing:
        problems.append(f"{len(missing):,} embedded items have no Semantic ID (e.g. {', '.join(missing[:EXAMPLES])})")
    if extra:
        problems.append(f"{len(extra):,} rows name items that were not embedded (e.g. {', '.join(extra[:EXAMPLES])})")
    if repeated:
        problems.append(f"{repeated:,} rows repeat an item id")
    return Outcome(
        False,
        f"The table has {len(in_table):,} rows for {len(embedded):,} embedded items: {'; '.join(problems)}. "
        "Downstream models would miss items or read stale ones. Rebuild the table from the current embeddings "
        "(re-materialize the Semantic-ID asset; new items are appended with the frozen tokenizer).",
        metadata,
    )


def finite_embeddings(item_ids: Sequence[str], vectors: np.ndarray) -> Outcome:
    """No NaN or inf in any item vector (n, dim)."""
    bad = ~np.isfinite(vectors).all(axis=1) if vectors.size else np.zeros(len(item_ids), dtype=bool)  # (n,)
    metadata = {
        "items": len(item_ids),
        "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
        "nan_vectors": int(np.isnan(vectors).any(axis=1).sum()) if vectors.size else 0,
        "inf_vectors": int(np.isinf(vectors).any(axis=1).sum()) if vectors.size else 0,
    }
    if not bad.any():
        return Outcome(True, f"All {len(item_ids):,} item vectors are finite.", metadata)
    examples = ", ".join(item_ids[i] for i in np.flatnonzero(bad)[:EXAMPLES])
    return Outcome(
        False,
        f"{int(bad.sum()):,} of {len(item_ids):,} item vectors contain NaN or inf ({metadata['nan_vectors']} NaN, "
        f"{metadata['inf_vectors']} inf), e.g. {examples}. Every tokenizer trained on them would learn garbage. "
        "Check those items' text, and re-run the embeddings in float32 (half precision overflows on long inputs) "
        "or with another model.",
        metadata,
    )


def metrics_in_unit_interval(metrics: Mapping[str, float | None], source: str) -> Outcome:
    """Every metric (AUC, recall, NDCG) is a number in [0, 1]; ``source`` names where they come from."""
    wrong = {
        name: value
        for name, value in metrics.items()
        if value is None or not np.isfinite(value) or not 0.0 <= float(value) <= 1.0
    }
    metadata: dict[str, float | int | str] = {"metrics": len(metrics), "out_of_range": len(wrong)}
    if not metrics:
        return Outcome(
            False, f"{source} reports no metrics to check: its manifest has none of the expected keys.", metadata
        )
    if not wrong:
        return Outcome(True, f"All {len(metrics)} metrics of {source} lie in [0, 1].", metadata)
    listed = ", ".join(f"{name} = {value}" for name, value in sorted(wrong.items()))
    return Outcome(
        False,
        f"{len(wrong)} of {len(metrics)} metrics of {source} are missing or outside [0, 1]: {listed}. The evaluation "
        "is broken (a wrong label column, an empty test split, a division by zero): do not compare this run; fix the "
        "cause and re-materialize it.",
        metadata,
    )


def ctr_metrics(manifest: Mapping[str, object]) -> dict[str, float | None]:
    """The [0, 1] metrics of a CTR model version: test and validation AUC (logloss is unbounded)."""
    return {name: manifest.get(name) for name in ("test_auc", "valid_auc") if name in manifest}  # type: ignore[misc]


def retrieval_metrics(manifest: Mapping[str, object]) -> dict[str, float | None]:
    """The test metrics of a TIGER evaluation or SASRec version (Recall/NDCG@K)."""
    test = manifest.get("test", {})
    return dict(test) if isinstance(test, Mapping) else {}


def study_metrics(results: pl.DataFrame) -> dict[str, float | None]:
    """Every run's test and validation AUC of a scaling-study version, named by the run."""
    metrics: dict[str, float | None] = {}
    for row in results.iter_rows(named=True):
        name = StudyCell(row["backbone"], row["kind"], row["scale"], row["fusion"], row["seed"]).name
        metrics[f"{name}/test_auc"] = row["test_auc"]
        metrics[f"{name}/valid_auc"] = row["valid_auc"]
    return metrics


def check_unique(table: StageOutput) -> Outcome:
    return unique_semantic_ids(read_table(table))


def check_usage(table: StageOutput, min_usage: float) -> Outcome:
    return code_usage(read_table(table), int(table.manifest["codebook_size"]), min_usage)


def check_rows(output_root: Path, table: StageOutput) -> Outcome:
    """`rows_match_embeddings` against the embeddings version the table's manifest names."""
    embeddings = existing_version(output_root, EMBEDDINGS_STAGE, table.manifest["embeddings"]["fingerprint"])
    embedded = read_parquet(embeddings.file(EMBEDDINGS_TABLE)).get_column("item_id").to_list()
    return rows_match_embeddings(read_table(table), embedded)


def check_embeddings(embeddings: StageOutput) -> Outcome:
    return finite_embeddings(*read_embeddings(embeddings))


def check_metrics(stage: StageOutput) -> Outcome:
    """`metrics_in_unit_interval` of a CTR model, scaling study, TIGER / decoder evaluation or SASRec version."""
    if stage.stage not in STAGE_METRICS:
        raise ValueError(f"no metric check for stage {stage.stage!r}; known: {sorted(STAGE_METRICS)}")
    return metrics_in_unit_interval(STAGE_METRICS[stage.stage](stage), f"{stage.stage} {stage.fingerprint}")


STAGE_METRICS: dict[str, Callable[[StageOutput], dict[str, float | None]]] = {
    CTR_MODEL: lambda stage: ctr_metrics(stage.manifest),
    STUDY_STAGE: lambda stage: study_metrics(study_results(stage)),
    TIGER_EVAL: lambda stage: retrieval_metrics(stage.manifest),
    DECODER_EVAL: lambda stage: retrieval_metrics(stage.manifest),
    SASREC: lambda stage: retrieval_metrics(stage.manifest),
}  # stage name -> the [0, 1] metrics of one of its versions
