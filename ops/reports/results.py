"""The downstream numbers of one data set as frames: CTR runs, the scaling tables, and the retrieval table.

CTR: one row per CTR model version (a standalone `ctr_model` run or a cell of the scaling study; both are the
same cached stage), from which the paper's Table 1 and Table 2 are built with `ops.ctr.study`'s own functions,
and a per-tokenizer summary (mean ± std of test AUC over seeds, per backbone) that the answer reads.
Retrieval: the most-popular baseline, every SASRec version and every Semantic-ID recommender evaluation (TIGER,
the decoder-only model), Recall/NDCG@5/10/20.
Stability: one row per pair of Semantic-ID table versions compared when a table was re-indexed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from ops.ctr.study import ID_ONLY, table1, table2
from ops.reports.sources import SID_MODELS, ReportSources
from ops.retrieval.metrics import KS

METRICS = tuple(f"{name}@{k}" for k in KS for name in ("recall", "ndcg"))  # retrieval columns, in order
POPULAR = "popular"  # retrieval families: the baseline, ID-based models, Semantic-ID models
ID_BASED = "id"
SEMANTIC = "semantic"
CTR_SCHEMA = {
    "backbone": pl.String,
    "tokenizer": pl.String,
    "kind": pl.String,
    "scale": pl.Int64,
    "fusion": pl.Boolean,
    "seed": pl.Int64,
    "test_auc": pl.Float64,
    "test_logloss": pl.Float64,
    "valid_auc": pl.Float64,
    "table": pl.String,
    "version": pl.String,
}
CTR_SUMMARY_SCHEMA = {
    "backbone": pl.String,
    "candidate": pl.String,
    "runs": pl.UInt32,
    "test_auc": pl.Float64,
    "test_auc_std": pl.Float64,
    "test_logloss": pl.Float64,
}
RETRIEVAL_SCHEMA = {
    "model": pl.String,
    "tokenizer": pl.String,
    "family": pl.String,
    **{metric: pl.Float64 for metric in METRICS},
    "users": pl.Int64,
    "epochs": pl.Int64,
    "stopped": pl.String,
    "version": pl.String,
}


STABILITY_SCHEMA = {
    "table": pl.String,
    "since": pl.String,
    "tokenizer": pl.String,
    "items kept": pl.Int64,
    "added": pl.Int64,
    "removed": pl.Int64,
    "IDs changed": pl.Int64,
    "share changed": pl.Float64,
}


def stability_table(sources: ReportSources) -> pl.DataFrame:
    """How many Semantic IDs moved at each re-indexing of the report's tables (`STABILITY_SCHEMA`): "frozen" rows
    kept the tokenizer (0 moved by construction), "retrained" ones show what retraining cost downstream models."""
    rows = [
        {
            "table": sources.label_of(manifest["after"]),
            "since": manifest["before"],
            "tokenizer": manifest["tokenizer"],
            "items kept": manifest["items_kept"],
            "added": manifest["items_added"],
            "removed": manifest["items_removed"],
            "IDs changed": manifest["items_changed_semantic_id"],
            "share changed": manifest["share_changed"],
        }
        for manifest in (stage.manifest for stage in sources.changes)
        if manifest["before"] != manifest["after"]
    ]
    return pl.DataFrame(rows, schema=STABILITY_SCHEMA).sort("table", "since")


def ctr_runs(sources: ReportSources) -> pl.DataFrame:
    """One row per CTR model version (`CTR_SCHEMA`); ID-only runs have kind "id", scale 0 and no table."""
    rows = []
    for stage in sources.ctr_models:
        manifest = stage.manifest
        table = manifest.get("semantic_ids")
        config = manifest.get("config", {})
        rows.append(
            {
                "backbone": manifest["backbone"],
                "tokenizer": sources.label_of(table["fingerprint"] if table else None),
                "kind": table["kind"] if table else ID_ONLY,
                "scale": int(table["scaling_factor"]) if table else 0,
                "fusion": bool(config.get("fusion", False)),
                "seed": int(config.get("train", {}).get("seed", 0)),
                "test_auc": manifest["test_auc"],
                "test_logloss": manifest.get("test_logloss"),
                "valid_auc": manifest.get("valid_auc"),
                "table": table["fingerprint"] if table else None,
                "version": stage.fingerprint,
            }
        )
    return pl.DataFrame(rows, schema=CTR_SCHEMA)


def scaling_tables(runs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """(Table 1, Table 2, notes) of the CTR runs, as the scaling study builds them (test AUC mean ± std).

    A cell pools every run of its (backbone, kind, scale, fusion); when those runs read more than one table
    version (say RQ-VAE 3x trained for 20 and for 300 epochs) a note names the cell, since the per-table
    summary is then the one to read. Another note says when the ID-only value has no 1x column to sit in.
    """
    if runs.is_empty():
        return pl.DataFrame(), pl.DataFrame(), []
    pooled = (
        runs.filter(pl.col("kind") != ID_ONLY)
        .group_by("backbone", "kind", "scale", "fusion")
        .agg(pl.col("table").n_unique().alias("tables"))
        .filter(pl.col("tables") > 1)
        .sort("backbone", "kind", "scale", "fusion")
    )
    notes = [
        f"{row['backbone']} {row['kind']} {row['scale']}x {'w/' if row['fusion'] else 'w/o'} fusion pools runs of "
        f"{row['tables']} table versions"
        for row in pooled.iter_rows(named=True)
    ]
    if (runs["kind"] == ID_ONLY).any() and not (runs["scale"] == 1).any():
        # Table 1 puts ID only in its 1x column, and has that column only when a 1x run exists
        notes.append("ID only belongs in the 1x column, which these runs lack (no 1x run): see the per-tokenizer table")
    return table1(runs), table2(runs), notes


def ctr_summary(runs: pl.DataFrame) -> pl.DataFrame:
    """Test AUC per (backbone, candidate) over seeds: candidate = tokenizer (+ fusion) or "ID only"."""
    if runs.is_empty():
        return pl.DataFrame(schema=CTR_SUMMARY_SCHEMA)
    named = runs.with_columns(
        candidate=pl.when(pl.col("fusion")).then(pl.col("tokenizer") + " + fusion").otherwise(pl.col("tokenizer"))
    )
    return (
        named.group_by("backbone", "candidate")
        .agg(
            runs=pl.len(),
            test_auc=pl.col("test_auc").mean(),
            test_auc_std=pl.col("test_auc").std(),
            test_logloss=pl.col("test_logloss").mean(),
        )
        .sort("backbone", pl.col("test_auc"), descending=[False, True])
    )


def retrieval_table(sources: ReportSources) -> pl.DataFrame:
    """Most popular, SASRec and Semantic-ID model rows (`RETRIEVAL_SCHEMA`), best Recall@10 first per family."""
    baseline = sources.most_popular.manifest
    rows: list[dict[str, Any]] = [
        _row(
            "Most popular",
            "-",
            POPULAR,
            baseline["test"],
            baseline.get("n_test_users"),
            None,
            None,
            sources.most_popular.fingerprint,
        )
    ]
    for stage in sources.sasrec:
        name = "SASRec" if len(sources.sasrec) == 1 else f"SASRec ({stage.fingerprint[:6]})"
        manifest = stage.manifest
        rows.append(
            _row(
                name,
                "-",
                ID_BASED,
                manifest["test"],
                manifest.get("n_test_users"),
                manifest.get("epochs"),
                manifest.get("stopped"),
                stage.fingerprint,
            )
        )
    per_model = [(stage.stage, stage.manifest["sid_table"]["fingerprint"]) for stage in sources.sid_evals]
    for stage in sources.sid_evals:
        manifest = stage.manifest
        table = manifest["sid_table"]["fingerprint"]
        model = sources.sid_models[manifest["model"]["fingerprint"]]
        name = SID_MODELS[stage.stage]
        if per_model.count((stage.stage, table)) > 1:
            name = f"{name} ({model.fingerprint[:6]})"
        rows.append(
            _row(
                name,
                sources.label_of(table),
                SEMANTIC,
                manifest["test"],
                manifest.get("n_users"),
                model.manifest.get("epochs"),
                model.manifest.get("stopped"),
                stage.fingerprint,
            )
        )
    order = {POPULAR: 0, ID_BASED: 1, SEMANTIC: 2}
    frame = pl.DataFrame(rows, schema=RETRIEVAL_SCHEMA)
    return frame.sort(pl.col("family").replace_strict(order), pl.col("recall@10"), descending=[False, True])


def _row(
    model: str,
    tokenizer: str,
    family: str,
    metrics: Mapping[str, float],
    users: int | None,
    epochs: int | None,
    stopped: str | None,
    version: str,
) -> dict[str, Any]:
    return {
        "model": model,
        "tokenizer": tokenizer,
        "family": family,
        **{metric: metrics.get(metric) for metric in METRICS},
        "users": users,
        "epochs": epochs,
        "stopped": stopped or "",
        "version": version,
    }
