"""LLM2Vec bidirectionality: a decoder's first token sees later tokens only when made bidirectional.

Both of transformers' masking paths are checked: texts alone (no padding, so the mask is skipped and the
attention kernel's own ``is_causal`` decides) and texts in a padded batch (an explicit mask is built).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ops.device import cpu_placement
from ops.embeddings.batching import pad_batch
from ops.embeddings.config import TEST_CONFIG, Pooling
from ops.embeddings.encoder import TransformerEmbedder
from ops.embeddings.forward import hidden_states

# Same opening words, different endings: any difference at position 0 can only come from later tokens.
SAME_START = ["Matte Liquid Lipstick, Ruby Red", "Matte Liquid Lipstick, Coral Pink; Revlon; Beauty, Makeup"]


def first_token_states(embedder: TransformerEmbedder, texts: list[str], together: bool) -> torch.Tensor:
    """(len(texts), dim) state at position 0 of each text, computed in one padded batch or each text alone."""
    groups = [embedder.tokenize(texts)] if together else [[ids] for ids in embedder.tokenize(texts)]
    rows = []
    for group in groups:
        input_ids, mask = pad_batch(group, embedder.tokenizer.pad_token_id, side="right")
        with torch.inference_mode():
            rows.append(hidden_states(embedder.model, input_ids, mask)[:, 0])  # (len(group), dim)
    return torch.cat(rows)


def relative_change(states: torch.Tensor) -> float:
    return ((states[0] - states[1]).norm() / states[0].norm()).item()


@pytest.mark.parametrize("together", [False, True], ids=["alone-unpadded", "batch-padded"])
@pytest.mark.parametrize("kind", ["smollm2", "tiny_opt"])
def test_first_token_depends_on_later_tokens_only_when_bidirectional(request, kind: str, together: bool) -> None:
    make = request.getfixturevalue(kind)
    causal, bidirectional = make(Pooling.MEAN, False), make(Pooling.MEAN, True)
    ids = causal.tokenize(SAME_START)
    assert ids[0][0] == ids[1][0] and ids[0] != ids[1][: len(ids[0])], "texts must share only their opening"

    # Causal: equal up to float noise from the different sequence lengths (~5e-6). Bidirectional: ~30% apart.
    assert relative_change(first_token_states(causal, SAME_START, together)) < 1e-4
    assert relative_change(first_token_states(bidirectional, SAME_START, together)) > 1e-2


def test_encoder_cannot_be_made_causal() -> None:
    with pytest.raises(ValueError, match="cannot be made causal"):
        TransformerEmbedder(dataclasses.replace(TEST_CONFIG, bidirectional=False), cpu_placement())
