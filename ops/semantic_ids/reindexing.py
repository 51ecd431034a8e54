"""Re-indexing under a frozen tokenizer: when may a new catalogue reuse the tokenizer trained on an old one?

Adding items changes the k-core, so the embeddings version changes and, with it, the tokenizer's fingerprint: a
naive run would retrain the tokenizer and re-encode every item, moving most Semantic IDs. Instead the previous
tokenizer is kept (and new items only are encoded, `stage.next_table_version`) when it is the same tokenizer the
run asks for, just trained on an earlier catalogue:

- its config and code are the ones asked for (its fingerprint is what this config gives on the embeddings it was
  trained on);
- the embeddings come from the same embedder (model, template, width);
- the items both catalogues share have (almost) the same vectors: a median cosine of at least
  ``MIN_MEDIAN_COSINE``, which catches an embedder whose settings changed in ways its manifest does not name.

Anything else retrains, as does ``retrain: true`` in the tokenizer's config.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ops.caching import StageOutput, existing_version
from ops.embeddings.stage import read_embeddings
from ops.quantizers.kinds import TokenizerConfig
from ops.quantizers.stage import tokenizer_fingerprint

EMBEDDINGS_STAGE = "embeddings"
EMBEDDER_FIELDS = ("model", "template", "dim")
MIN_MEDIAN_COSINE = 0.999


def frozen_tokenizer(
    output_root: Path, config: TokenizerConfig, embeddings: StageOutput, previous: StageOutput | None
) -> StageOutput | None:
    """``previous`` (the tokenizer version published last) if it may encode ``embeddings``' items, else None.

    None also when ``previous`` was trained on these very embeddings: training is then a cache hit anyway.
    """
    if previous is None:
        return None
    trained_on = previous.manifest["embeddings"]["fingerprint"]
    if trained_on == embeddings.fingerprint:
        return None
    try:
        old = existing_version(output_root, EMBEDDINGS_STAGE, trained_on)
    except (FileNotFoundError, ValueError):
        return None  # its training data is gone: nothing to check it against
    if tokenizer_fingerprint(config, old) != previous.fingerprint:
        return None
    if any(old.manifest.get(key) != embeddings.manifest.get(key) for key in EMBEDDER_FIELDS):
        return None
    return previous if same_vectors(old, embeddings) else None


def same_vectors(old: StageOutput, new: StageOutput) -> bool:
    """Whether the items both versions embed have vectors with a median cosine of at least MIN_MEDIAN_COSINE."""
    old_ids, old_vectors = read_embeddings(old)
    new_ids, new_vectors = read_embeddings(new)
    new_row = {item_id: row for row, item_id in enumerate(new_ids)}
    pairs = [(row, new_row[item_id]) for row, item_id in enumerate(old_ids) if item_id in new_row]
    if not pairs:
        return False
    rows_old, rows_new = map(list, zip(*pairs, strict=True))
    a, b = old_vectors[rows_old], new_vectors[rows_new]
    cosine = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(np.median(cosine)) >= MIN_MEDIAN_COSINE
