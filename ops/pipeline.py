"""The cached stages chained without Dagster: for benchmarks, notebooks and the grids inside study assets.

Every call goes through the same cached stage functions the assets call, so a benchmark and a Dagster run
on the same data, config and code share outputs (and a second call costs nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ops.caching import StageOutput
from ops.embeddings.config import MINILM_CONFIG, EmbedderConfig
from ops.embeddings.stage import embed
from ops.embeddings.templates import TEMPLATES
from ops.ingest import stages
from ops.ingest.datasets import get_dataset
from ops.quantizers.kinds import TokenizerConfig
from ops.quantizers.stage import train_tokenizer_stage
from ops.quantizers.train import EpochCallback
from ops.semantic_ids.stage import semantic_ids_stage


@dataclass(frozen=True)
class Prepared:
    """One data set ingested, k-cored, split and embedded: the inputs of every tokenizer and downstream model."""

    dataset: str
    normalized: StageOutput
    kcore: StageOutput
    splits: StageOutput
    embeddings: StageOutput


def prepare(
    dataset: str,
    data_root: Path,
    output_root: Path,
    embedder: EmbedderConfig = MINILM_CONFIG,
    k: int = stages.KCoreConfig.k,
    split_seed: int = stages.SplitConfig.seed,
) -> Prepared:
    """Ingest -> k-core -> splits -> item embeddings for ``dataset``, with the assets' defaults."""
    spec = get_dataset(dataset)
    normalized = stages.normalize(spec, data_root, output_root, stages.NormalizeConfig())
    kcore = stages.kcore(normalized, output_root, stages.KCoreConfig(k=k))
    splits = stages.splits(kcore, output_root, stages.SplitConfig(seed=split_seed))
    embeddings = embed(kcore, output_root, embedder, TEMPLATES[spec.text_template])
    return Prepared(dataset, normalized, kcore, splits, embeddings)


def semantic_id_version(
    output_root: Path,
    embeddings: StageOutput,
    config: TokenizerConfig,
    callback: EpochCallback | None = None,
) -> tuple[StageOutput, StageOutput]:
    """(tokenizer stage, Semantic-ID table stage) for ``config`` trained on ``embeddings``."""
    tokenizer = train_tokenizer_stage(output_root, config, embeddings, callback)
    return tokenizer, semantic_ids_stage(output_root, tokenizer, embeddings)
