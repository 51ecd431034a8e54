"""LLM2Vec-style bidirectional attention for a causal decoder, and a probe that proves which kind a model has.

How transformers 5.x decides causality (read from ``masking_utils.py``, ``utils/generic.py`` and
``integrations/sdpa_attention.py``), and why one config flag is the whole switch:

1. The model body (``LlamaModel``, ``OPTDecoder``, ...) builds its mask with ``create_causal_mask(config, ...)``.
   When ``config.is_causal`` is False that function returns ``create_bidirectional_mask(...)`` instead: padding
   keys are still masked, later tokens are not. The mask comes in the format of the configured attention
   implementation (additive float for eager, boolean for SDPA, block mask for flex), so no hand-made 4D mask
   has to guess that format.
2. Without padding that mask is skipped (None), and SDPA/flash kernels then decide causality from the
   ``is_causal`` keyword, else from the attention module's own ``is_causal = True``. The body's forward is
   wrapped by ``merge_with_config_defaults``, which passes ``config.is_causal`` down as that keyword, so the
   kernels follow the config too.

A model whose forward skips either step would stay (partly) causal; `attends_to_future` therefore checks both
paths, an unpadded and a padded batch, on the actual model, and `make_bidirectional` raises if either fails.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from ops.embeddings.forward import hidden_states


def _first_token_changes(model: PreTrainedModel, input_ids: torch.Tensor, mask: torch.Tensor) -> bool:
    """Rows 0 and 1 share their first token and differ after it: does the first token's state differ?"""
    with torch.inference_mode():
        states = hidden_states(model, input_ids, mask).float()  # (2, seq, dim)
    change = (states[0, 0] - states[1, 0]).norm() / states[0, 0].norm().clamp(min=1e-12)
    return bool(change > 1e-4)  # causal: equal to the last bit (same shapes); bidirectional: percents apart


def attends_to_future(model: PreTrainedModel) -> bool:
    """True when the first token sees the second, both without padding (mask skipped, kernel decides) and with a
    padding column (explicit mask); False when it sees it in neither. Mixed results mean a half-causal model."""
    embeddings = model.get_input_embeddings()
    vocab, device = embeddings.num_embeddings, embeddings.weight.device
    first, second_a, second_b = vocab // 2, vocab // 3, vocab // 3 + 1  # ordinary ids in any vocabulary
    unpadded = torch.tensor([[first, second_a], [first, second_b]], device=device)  # (2, 2)
    padded = torch.tensor([[first, second_a, first], [first, second_b, first]], device=device)  # (2, 3)
    padding_mask = torch.tensor([[1, 1, 0], [1, 1, 0]], device=device)  # last column is padding
    seen = {
        _first_token_changes(model, unpadded, torch.ones_like(unpadded)),
        _first_token_changes(model, padded, padding_mask),
    }
    if len(seen) > 1:
        raise ValueError(f"{type(model).__name__} is causal on one masking path only: check its attention set-up")
    return seen.pop()


def make_bidirectional(model: PreTrainedModel) -> None:
    """Let every token attend to every real token of its text (padding stays masked); raise if it does not."""
    model.config.is_causal = False
    if not attends_to_future(model):
        raise ValueError(
            f"{type(model).__name__} stays causal with config.is_causal=False: its mask is built elsewhere"
        )
