"""Trie-constrained beam search over Semantic IDs, batched over many users at once.

The encoder runs once per user; the decoder then runs one token per step with its KV cache, for all beams
of all users in one batch. At each step the log-probabilities of the beams' continuations are masked by one
gather on the trie's level array (invalid continuation -> -inf) and each user keeps its ``beams`` best
prefixes; the self-attention cache is reordered by the surviving beams' parents. After the last level every
surviving beam is a distinct real item (distinct paths of the trie end in distinct items). A user with fewer
than ``beams`` items reachable gets -1 (score -inf) in the remaining slots; nothing is padded with a guess.

Scores are sums of full-vocabulary log-softmax terms, as `transformers`' beam search computes them, so both
decoders rank the same beams the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from ops.retrieval.trie import SIDTrie
from ops.retrieval.vocabulary import PAD_TOKEN


@dataclass(frozen=True)
class BeamResult:
    items: np.ndarray  # (n_users, beams) int64 item index, best first; -1 where no further item was reachable
    scores: np.ndarray  # (n_users, beams) float32 log-probability of the item; -inf where items == -1
    tokens: np.ndarray  # (n_users, beams, levels) int64 generated vocabulary ids; 0 where items == -1

    @property
    def users_short(self) -> int:
        """Users who got fewer than ``beams`` items."""
        return int((self.items < 0).any(axis=1).sum())


@torch.no_grad()
def beam_search(
    model: T5ForConditionalGeneration,
    trie: SIDTrie,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    beams: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids, attention_mask (n, T) on the model's device -> items (n, beams), scores (n, beams),
    tokens (n, beams, levels); see `BeamResult`. ``trie`` must be on the same device."""
    n = len(input_ids)
    vocabulary = trie.vocabulary
    encoder = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (n, T, d)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    scores = torch.zeros(n, 1, device=input_ids.device)  # (n, k) beam log-probabilities, k = 1 at the root
    prefix = torch.zeros(n, 1, dtype=torch.long, device=input_ids.device)  # (n, k) trie node of each beam
    generated = torch.zeros(n, 1, 0, dtype=torch.long, device=input_ids.device)  # (n, k, level)
    step_input = torch.full((n, 1), PAD_TOKEN, dtype=torch.long, device=input_ids.device)  # (n * k, 1)
    for level, (offset, size) in enumerate(zip(vocabulary.offsets.tolist(), vocabulary.level_sizes)):
        k = scores.shape[1]
        logits = model(
            encoder_outputs=(encoder,),
            attention_mask=attention_mask,
            decoder_input_ids=step_input,
            cache=cache,
            use_cache=True,
        ).logits[:, -1]  # (n * k, vocab)
        log_probs = torch.log_softmax(logits.float(), dim=-1)[:, offset : offset + size].view(n, k, size)
        child = trie.transitions[level][prefix]  # (n, k, size) next node, -1 = invalid
        candidates = torch.where(child >= 0, scores[..., None] + log_probs, -torch.inf).view(n, k * size)
        scores, chosen = candidates.topk(min(beams, k * size), dim=1)  # (n, k'), best first
        parent = chosen // size  # (n, k') beam each survivor extends
        prefix = child.view(n, -1).gather(1, chosen).clamp(min=0)  # exhausted beams keep -inf, node 0 is harmless
        generated = torch.cat(
            [generated.gather(1, parent[..., None].expand(-1, -1, level)), (chosen % size + offset)[..., None]], dim=2
        )
        rows = (parent + torch.arange(n, device=parent.device)[:, None] * k).view(-1)  # (n * k',) cache rows kept
        cache.self_attention_cache.reorder_cache(rows)
        if len(rows) != len(encoder):  # beams fanned out (from the root's one): cross-attention rows follow
            cache.cross_attention_cache.reorder_cache(rows)
            encoder = encoder.index_select(0, rows)
            attention_mask = attention_mask.index_select(0, rows)
        step_input = generated[:, :, -1].reshape(-1, 1)
    found = torch.isfinite(scores)  # (n, k)
    items = torch.where(found, prefix, -1)
    generated = torch.where(found[..., None], generated, 0)
    missing = beams - scores.shape[1]
    if missing > 0:  # fewer candidates than beams even at the widest level
        items = torch.nn.functional.pad(items, (0, missing), value=-1)
        scores = torch.nn.functional.pad(scores, (0, missing), value=-torch.inf)
        generated = torch.nn.functional.pad(generated, (0, 0, 0, missing), value=0)
    return items, scores, generated


def decode_users(
    model: T5ForConditionalGeneration,
    trie: SIDTrie,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    beams: int,
    batch_size: int = 32,
) -> BeamResult:
    """`beam_search` over many users in batches of ``batch_size`` users of similar input length.

    input_ids, attention_mask (n, T) numpy, padding after the tokens; results come back in input order.
    """
    device = next(model.parameters()).device
    trie = trie.to(device)
    model.eval()
    lengths = attention_mask.sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    items = np.full((len(input_ids), beams), -1, dtype=np.int64)
    scores = np.full((len(input_ids), beams), -np.inf, dtype=np.float32)
    tokens = np.zeros((len(input_ids), beams, trie.vocabulary.levels), dtype=np.int64)
    for begin in range(0, len(order), batch_size):
        rows = order[begin : begin + batch_size]
        width = max(int(lengths[rows].max()), 1)
        found = beam_search(
            model,
            trie,
            torch.from_numpy(input_ids[rows, :width]).to(device),
            torch.from_numpy(attention_mask[rows, :width]).to(device),
            beams,
        )
        items[rows], scores[rows], tokens[rows] = (t.cpu().numpy() for t in found)
    return BeamResult(items, scores, tokens)
