"""Every diagnostic of one Semantic-ID table, from its codes, the items' categories and its tokenizer's vectors.

Code diagnostics need only the table: usage and perplexity per level, collisions, NMI of each level's codes
against item categories (MoC paper Fig. 3a). Representation diagnostics need the semantic representation:
here, as in `bench/tokenizers.py`, each item's per-codebook vectors from the frozen tokenizer (the
tokenizer-side analogue of the paper's Semantic-ID embeddings): their singular spectrum (Fig. 4), the Pearson
correlation between codebooks (Fig. 7), and the NMI of K-Means clusters of their concatenation against the
categories as the number of clusters grows (Fig. 2b/3b). A table whose tokenizer cannot give vectors gets the
code diagnostics and a note saying why the rest is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ops.caching import existing_version
from ops.diagnostics.correlation import codebook_correlation
from ops.diagnostics.nmi import code_nmi, kmeans_nmi
from ops.diagnostics.spectrum import singular_spectrum
from ops.diagnostics.usage import level_usage
from ops.reports.sources import TOKENIZER, TableSource
from ops.semantic_ids.table import collision_report, table_codes

NO_LABEL = "(none)"  # the class of items without a category at the chosen level


@dataclass(frozen=True)
class Labels:
    """Ground-truth classes for NMI: one category level of the items."""

    by_item: dict[str, str]  # item id -> class
    description: str  # e.g. "categories[1]"
    n_classes: int

    def of(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.array([self.by_item.get(item, NO_LABEL) for item in item_ids])


@dataclass(frozen=True)
class TableDiagnostics:
    label: str  # the report's name of the table
    kind: str
    scale: int
    codebook_size: int
    n_items: int
    usage: list[float]  # (levels,) fraction of each level's codebook used
    perplexity: list[float]  # (levels,) exp(entropy) of each level's codes
    collision_rate: float  # items sharing their code tuple (before the suffix)
    collision_rate_with_suffix: float  # 0 for a valid table
    max_suffix: int
    distinct_tuples: int
    nmi_levels: list[float] | None  # (levels,) NMI of each level's codes vs the labels; None without labels
    nmi_joint: float | None  # NMI of the whole code tuple
    nmi_clusters: dict[int, float] | None  # clusters -> NMI of K-Means on the representation; None without either
    spectrum: np.ndarray | None  # (min(n, levels * dim),) normalized singular values, largest first
    correlation: np.ndarray | None  # (levels, levels) Pearson correlation between codebooks
    note: str  # why representation diagnostics are missing ("" when present)

    @property
    def levels(self) -> int:
        return len(self.usage)

    @property
    def min_usage(self) -> float | None:
        return min(self.usage) if self.usage else None

    @property
    def top_singular_value(self) -> float | None:
        return float(self.spectrum[0]) if self.spectrum is not None and len(self.spectrum) else None

    @property
    def mean_abs_correlation(self) -> float | None:
        """Mean |r| between distinct codebooks: 0 = independent codes, 1 = redundant ones (ME's failure)."""
        if self.correlation is None or self.levels < 2:
            return None
        return float(np.abs(self.correlation[~np.eye(self.levels, dtype=bool)]).mean())


def category_labels(items: pl.DataFrame) -> Labels | None:
    """The first category level that splits the catalogue into >= 2 classes (Beauty: the level below "Beauty").

    Items with no category at that level form one extra class. None when no level distinguishes any items.
    """
    categories = items.select("item_id", "categories").filter(pl.col("categories").is_not_null())
    depth = int(categories["categories"].list.len().max() or 0)
    for level in range(depth):
        values = categories.select("item_id", pl.col("categories").list.get(level, null_on_oob=True).alias("c"))
        if values["c"].drop_nulls().n_unique() >= 2:
            by_item = {item: value or NO_LABEL for item, value in values.iter_rows()}
            return Labels(by_item, f"categories[{level}]", len(set(by_item.values())))
    return None


def codebook_vectors(output_root: Path, table: TableSource, codes: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(per-codebook vectors (n, levels, dim), "") from the table's frozen tokenizer, or (None, the reason)."""
    import torch

    from ops.quantizers.stage import load_tokenizer

    tokenizer = table.stage.manifest.get("tokenizer", {})
    if tokenizer.get("stage") != TOKENIZER:
        return None, f"its tokenizer ({tokenizer.get('stage', 'unknown stage')}) has no codebook vectors"
    try:
        stage = existing_version(output_root, TOKENIZER, tokenizer["fingerprint"])
    except FileNotFoundError:
        return None, f"tokenizer version {tokenizer['fingerprint']} is no longer under {output_root}"
    model = load_tokenizer(stage)
    if not hasattr(model, "codebook_vectors"):
        return None, f"the {tokenizer.get('kind')} tokenizer has no codebook_vectors()"
    with torch.no_grad():
        return model.codebook_vectors(torch.from_numpy(codes)).numpy(), ""


def diagnose(
    source: TableSource,
    table: pl.DataFrame,
    labels: Labels | None,
    per_code: np.ndarray | None,
    cluster_counts: Sequence[int],
    seed: int,
    note: str = "",
) -> TableDiagnostics:
    """Every diagnostic of ``table``; ``per_code`` (n, levels, dim) is the table's per-codebook representation."""
    codes = table_codes(table)  # (n, levels)
    usage = level_usage(codes, source.codebook_size)
    collisions = collision_report(table)
    item_labels = labels.of(table["item_id"].to_list()) if labels is not None else None
    nmi = code_nmi(codes, item_labels) if item_labels is not None else None
    representation = per_code.reshape(len(per_code), -1) if per_code is not None else None  # (n, levels * dim)
    counts = [k for k in cluster_counts if k < len(table)]
    if representation is None:
        note = note or "no semantic representation"
    elif item_labels is None:
        note = "no item categories to score NMI against"
    return TableDiagnostics(
        label=source.label,
        kind=source.kind,
        scale=source.scale,
        codebook_size=source.codebook_size,
        n_items=len(table),
        usage=usage["usage"],
        perplexity=usage["perplexity"],
        collision_rate=float(collisions["collision_rate"]),
        collision_rate_with_suffix=float(collisions["collision_rate_with_suffix"]),
        max_suffix=int(collisions["max_collision_suffix"]),
        distinct_tuples=int(collisions["distinct_code_tuples"]),
        nmi_levels=list(nmi["per_level"]) if nmi is not None else None,
        nmi_joint=float(nmi["joint"]) if nmi is not None else None,
        nmi_clusters=(
            kmeans_nmi(representation, item_labels, counts, seed)
            if representation is not None and item_labels is not None
            else None
        ),
        spectrum=singular_spectrum(representation) if representation is not None else None,
        correlation=codebook_correlation(per_code) if per_code is not None else None,
        note=note,
    )


def summary_frame(diagnostics: Sequence[TableDiagnostics]) -> pl.DataFrame:
    """One row per table: the figures a reader compares first."""
    largest = max((k for d in diagnostics for k in d.nmi_clusters or {}), default=None)
    rows = []
    for d in diagnostics:
        row = {
            "tokenizer": d.label,
            "items": d.n_items,
            "min usage": d.min_usage,
            "collisions": d.collision_rate,
            "max suffix": d.max_suffix,
            "NMI joint": d.nmi_joint,
            "NMI level 1": d.nmi_levels[0] if d.nmi_levels else None,
            "σ1": d.top_singular_value,
            "mean |corr|": d.mean_abs_correlation,
        }
        if largest is not None:
            row[f"NMI k-means@{largest}"] = (d.nmi_clusters or {}).get(largest)
        rows.append(row)
    return pl.DataFrame(rows) if rows else pl.DataFrame()
