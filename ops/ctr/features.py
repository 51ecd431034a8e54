"""Sample rows (user, item) -> an int64 field matrix, plus the `FeatureSpec` list that describes its columns.

Fields: user id, item id (optional: SID-only vs ID+SID), brand, top category, price bucket, and the
Semantic-ID fields of a table version. Id and attribute vocabularies are built from the TRAINING rows only;
index 0 is "unknown/missing", so an id first seen in valid/test maps to 0 exactly as it would in production.
Semantic IDs need no vocabulary: a code is its own index (+1, 0 = item absent from the table), which is the
point of them -- an item unseen in training still gets the embeddings its codes learned from other items.

Semantic-ID fields: one field per code column, repeated ``copies`` times, each copy its own vocabulary range
(so its own embedding table). RQ-VAE: a field per level; MoC: a field per codebook; ME (one code): M copies of
that code's field, i.e. M independent tables looked up with the same code (Guo et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from ops.semantic_ids.table import table_codes

Side = Literal["user", "item", "context"]
UNKNOWN = 0  # index of an unknown or missing value in every id/attribute field


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    vocab_size: int  # indices 0..vocab_size-1, 0 = unknown/missing
    side: Side  # MoC fusion mixes the "item" fields


@dataclass(frozen=True)
class FeatureConfig:
    use_item_id: bool = True  # False: items are known only by attributes + Semantic IDs (SID-only)
    price_buckets: int = 10  # quantile buckets of the training items' prices; null price gets its own bucket

    def __post_init__(self) -> None:
        if self.price_buckets < 1:
            raise ValueError(f"price_buckets must be >= 1, got {self.price_buckets}")


@dataclass(frozen=True)
class SemanticIds:
    """What the feature builder needs from a Semantic-ID table version."""

    item_ids: list[str]
    codes: np.ndarray  # (n_items, n_codes) int64
    codebook_size: int
    copies: int  # embedding tables per code column: ME's scaling factor, else 1

    @classmethod
    def from_table(cls, table: pl.DataFrame, manifest: dict[str, Any]) -> SemanticIds:
        copies = int(manifest["scaling_factor"]) if manifest["tokenizer"]["kind"] == "me" else 1
        return cls(table["item_id"].to_list(), table_codes(table), int(manifest["codebook_size"]), copies)


@dataclass(frozen=True)
class EncodedFeatures:
    features: list[FeatureSpec]
    matrix: np.ndarray  # (n_rows, n_fields) int64, column j indexes features[j]'s vocabulary


def encode_features(
    samples: pl.DataFrame,
    items: pl.DataFrame,
    semantic_ids: SemanticIds | None,
    config: FeatureConfig,
) -> EncodedFeatures:
    """Encode every row of ``samples`` (user_id, item_id, split); vocabularies come from its train rows."""
    train = samples.filter(pl.col("split") == "train")
    attributes = item_attributes(items, train["item_id"].unique(), config.price_buckets)
    rows = samples.select("user_id", "item_id").join(attributes, on="item_id", how="left", maintain_order="left")
    if rows.height != samples.height:
        raise ValueError(f"items table repeats item ids: {rows.height - samples.height} extra rows after the join")
    columns: list[tuple[FeatureSpec, np.ndarray]] = [_vocabulary_field("user_id", "user", rows, train["user_id"])]
    if config.use_item_id:
        columns.append(_vocabulary_field("item_id", "item", rows, train["item_id"]))
    known_items = attributes.filter(pl.col("item_id").is_in(train["item_id"].unique().implode()))
    for name in ("brand", "category"):
        columns.append(_vocabulary_field(name, "item", rows, known_items[name]))
    n_price = config.price_buckets + 2  # unknown item, null price, buckets
    columns.append((FeatureSpec("price", n_price, "item"), rows["price"].fill_null(UNKNOWN).to_numpy()))
    if semantic_ids is not None:
        columns.extend(_semantic_id_fields(rows["item_id"], semantic_ids))
    features = [spec for spec, _ in columns]
    matrix = np.stack([values.astype(np.int64) for _, values in columns], axis=1)  # (n_rows, n_fields)
    return EncodedFeatures(features, matrix)


def item_attributes(items: pl.DataFrame, train_items: pl.Series, price_buckets: int) -> pl.DataFrame:
    """item_id -> brand, top category, price bucket (1 = null price, 2.. = quantile buckets).

    The top category is the first below the catalogue root (Beauty > "Skin Care"): the root is the same for
    every item of a data set and tells nothing. Bucket edges are quantiles of the training items' prices.
    """
    categories = pl.col("categories")
    category = pl.when(categories.list.len() > 1).then(categories.list.get(1, null_on_oob=True))
    category = category.otherwise(categories.list.get(0, null_on_oob=True))
    frame = items.select("item_id", pl.col("brand").str.strip_chars(), category.alias("category"), "price")
    frame = frame.with_columns(pl.when(pl.col("brand") == "").then(None).otherwise(pl.col("brand")).alias("brand"))
    known = frame.filter(pl.col("item_id").is_in(train_items.implode()))["price"].drop_nulls().to_numpy()
    quantiles = np.linspace(0, 1, price_buckets + 1)[1:-1]
    edges = np.unique(np.quantile(known, quantiles)) if len(known) else np.zeros(0)
    price = frame["price"].to_numpy()
    bucket = np.where(np.isnan(price), 1, 2 + np.searchsorted(edges, np.nan_to_num(price), side="right"))
    return frame.with_columns(pl.Series("price", bucket, dtype=pl.Int64))


def _vocabulary_field(
    name: str, side: Side, rows: pl.DataFrame, train_values: pl.Series
) -> tuple[FeatureSpec, np.ndarray]:
    """Index values 1..n in sorted order of the distinct non-null training values; anything else -> 0."""
    vocabulary = train_values.drop_nulls().unique().sort()
    lookup = pl.DataFrame({name: vocabulary, "__index": np.arange(1, len(vocabulary) + 1, dtype=np.int64)})
    indices = rows.select(name).join(lookup, on=name, how="left", maintain_order="left")["__index"]
    return FeatureSpec(name, len(vocabulary) + 1, side), indices.fill_null(UNKNOWN).to_numpy()


def _semantic_id_fields(item_ids: pl.Series, semantic_ids: SemanticIds) -> list[tuple[FeatureSpec, np.ndarray]]:
    """``copies`` fields per code column, each index = code + 1 (0 = item missing from the table)."""
    position = pl.DataFrame({"item_id": semantic_ids.item_ids, "__row": np.arange(len(semantic_ids.item_ids))})
    rows = item_ids.to_frame().join(position, on="item_id", how="left", maintain_order="left")["__row"]
    present = rows.is_not_null().to_numpy()
    codes = semantic_ids.codes[rows.fill_null(0).to_numpy()] + 1  # (n_rows, n_codes)
    codes[~present] = UNKNOWN
    vocab = semantic_ids.codebook_size + 1
    return [
        (FeatureSpec(f"sid{level}_{copy}", vocab, "item"), codes[:, level])
        for level in range(codes.shape[1])
        for copy in range(semantic_ids.copies)
    ]
