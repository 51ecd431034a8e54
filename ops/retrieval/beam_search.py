"""Trie-constrained beam search over Semantic IDs, batched over many users at once, for TIGER's encoder-decoder
and for any `transformers` causal LM.

Both decoders share the search itself (`extend`): at each Semantic-ID level the log-probabilities of the beams'
continuations are masked by one gather on the trie's level array (invalid continuation -> -inf) and each user
keeps its ``beams`` best prefixes, with the row of each survivor's parent for the caller's key/value cache.
After the last level every surviving beam is a distinct real item (distinct paths of the trie end in distinct
items). A user with fewer than ``beams`` items reachable gets -1 (score -inf) in the remaining slots; nothing is
padded with a guess.

What differs is only how the next logits are computed. TIGER (`beam_search`) runs its encoder once per user,
then its decoder one token per step with a self-attention cache. A causal LM (`causal_beam_search`) runs one
prefill over the user's history (left-aligned, position ids counted from each user's first real token, so
padding changes nothing), then one step per level on the same cache, all beams of a user in that user's row.

Scores are sums of full-vocabulary log-softmax terms, as `transformers`' beam search computes them, so both
decoders rank the same beams the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, T5ForConditionalGeneration
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from ops.retrieval.trie import SIDTrie
from ops.retrieval.vocabulary import PAD_TOKEN

Search = Callable[[PreTrainedModel, SIDTrie, torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, ...]]


@dataclass(frozen=True)
class BeamResult:
    items: np.ndarray  # (n_users, beams) int64 item index, best first; -1 where no further item was reachable
    scores: np.ndarray  # (n_users, beams) float32 log-probability of the item; -inf where items == -1
    tokens: np.ndarray  # (n_users, beams, levels) int64 generated vocabulary ids; 0 where items == -1

    @property
    def users_short(self) -> int:
        """Users who got fewer than ``beams`` items."""
        return int((self.items < 0).any(axis=1).sum())


@dataclass(frozen=True)
class Beams:
    """The surviving prefixes of every user after some levels: k beams per user (k = 1 at the root)."""

    scores: torch.Tensor  # (n, k) log-probability of each prefix; -inf for an exhausted slot
    node: torch.Tensor  # (n, k) trie node of each prefix (the item index after the last level)
    tokens: torch.Tensor  # (n, k, depth) vocabulary ids generated so far

    @classmethod
    def root(cls, n: int, device: torch.device) -> Beams:
        node = torch.zeros(n, 1, dtype=torch.long, device=device)
        return cls(torch.zeros(n, 1, device=device), node, torch.zeros(n, 1, 0, dtype=torch.long, device=device))

    @property
    def last_tokens(self) -> torch.Tensor:
        """(n * k, 1) each beam's newest token: the next step's input."""
        return self.tokens[:, :, -1].reshape(-1, 1)


def extend(beams: Beams, logits: torch.Tensor, trie: SIDTrie, width: int) -> tuple[Beams, torch.Tensor]:
    """The ``width`` best valid one-token continuations of every user's beams at the next level.

    logits (n * k, vocab): each beam's next-token logits, beams of a user adjacent. Returns the new beams and
    rows (n * k',): for each new beam, the row of its parent among the n * k old ones, to reorder caches by.
    """
    n, k = beams.scores.shape
    level = beams.tokens.shape[2]
    offset, size = int(trie.vocabulary.offsets[level]), trie.vocabulary.level_sizes[level]
    log_probs = torch.log_softmax(logits.float(), dim=-1)[:, offset : offset + size].view(n, k, size)
    child = trie.transitions[level][beams.node]  # (n, k, size) next node, -1 = invalid
    candidates = torch.where(child >= 0, beams.scores[..., None] + log_probs, -torch.inf).view(n, k * size)
    scores, chosen = candidates.topk(min(width, k * size), dim=1)  # (n, k'), best first
    parent = chosen // size  # (n, k') beam each survivor extends
    node = child.view(n, -1).gather(1, chosen).clamp(min=0)  # exhausted beams keep -inf, node 0 is harmless
    tokens = torch.cat(
        [beams.tokens.gather(1, parent[..., None].expand(-1, -1, level)), (chosen % size + offset)[..., None]], dim=2
    )
    rows = (parent + torch.arange(n, device=parent.device)[:, None] * k).view(-1)  # (n * k',)
    return Beams(scores, node, tokens), rows


def finish(beams: Beams, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Complete beams -> items (n, width), scores (n, width), tokens (n, width, levels); see `BeamResult`."""
    found = torch.isfinite(beams.scores)  # (n, k)
    items = torch.where(found, beams.node, -1)
    scores = beams.scores
    tokens = torch.where(found[..., None], beams.tokens, 0)
    missing = width - scores.shape[1]
    if missing > 0:  # fewer candidates than beams even at the widest level
        items = torch.nn.functional.pad(items, (0, missing), value=-1)
        scores = torch.nn.functional.pad(scores, (0, missing), value=-torch.inf)
        tokens = torch.nn.functional.pad(tokens, (0, 0, 0, missing), value=0)
    return items, scores, tokens


@torch.no_grad()
def beam_search(
    model: T5ForConditionalGeneration,
    trie: SIDTrie,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    beams: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TIGER: input_ids, attention_mask (n, T) encoder inputs on the model's device -> items (n, beams), scores
    (n, beams), tokens (n, beams, levels); see `BeamResult`. ``trie`` must be on the same device."""
    encoder = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (n, T, d)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    state = Beams.root(len(input_ids), input_ids.device)
    step_input = torch.full((len(input_ids), 1), PAD_TOKEN, dtype=torch.long, device=input_ids.device)  # (n * k, 1)
    for _ in range(trie.vocabulary.levels):
        logits = model(
            encoder_outputs=(encoder,),
            attention_mask=attention_mask,
            decoder_input_ids=step_input,
            cache=cache,
            use_cache=True,
        ).logits[:, -1]  # (n * k, vocab)
        state, rows = extend(state, logits, trie, beams)
        cache.self_attention_cache.reorder_cache(rows)
        if len(rows) != len(encoder):  # beams fanned out (from the root's one): cross-attention rows follow
            cache.cross_attention_cache.reorder_cache(rows)
            encoder = encoder.index_select(0, rows)
            attention_mask = attention_mask.index_select(0, rows)
        step_input = state.last_tokens
    return finish(state, beams)


@torch.no_grad()
def causal_beam_search(
    model: PreTrainedModel,
    trie: SIDTrie,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    beams: int,
    last_logits_only: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Any causal LM: input_ids, attention_mask (n, T) prompts with padding after them, on the model's device ->
    items (n, beams), scores (n, beams), tokens (n, beams, levels); see `BeamResult`.

    ``last_logits_only`` asks the prefill for the last position's logits alone (``logits_to_keep=1``): with an
    LLM's vocabulary, (n, T, vocab) logits of every prompt position would dominate the prefill's time and memory.

    One prefill over the left-aligned prompts fills the key/value cache, one row per user. Each level then feeds
    the new token of every beam of a user in that user's row, appended to its cache, under a 4-D attention mask
    that lets each token see its prompt, its own ancestors and itself (tree attention), at the position after its
    ancestors. The prompt's keys and values are never copied per beam and nothing is reordered: an expanded
    cache (users x beams rows) would copy the whole prompt cache at every level, which dominated decoding time.
    """
    input_ids, attention_mask = left_aligned(input_ids, attention_mask)  # (n, T), padding first
    n, width = input_ids.shape
    cache = DynamicCache()
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=prompt_positions(attention_mask),
        cache=cache,
        use_cache=True,
        **({"logits_to_keep": 1} if last_logits_only else {}),
    ).logits[:, -1]  # (n, vocab): the root's one beam per user
    prompt = attention_mask.bool()  # (n, T) cache columns holding prompt tokens
    start = attention_mask.sum(dim=1, keepdim=True)  # (n, 1) position of each user's first generated token
    blocked = torch.finfo(model.dtype).min  # additive mask value: 0 = attend (works for eager and SDPA alike)
    columns = torch.zeros(n, 1, 0, dtype=torch.long, device=input_ids.device)  # (n, k, depth) cache column per token
    state = Beams.root(n, input_ids.device)
    for level in range(trie.vocabulary.levels):
        previous = state.scores.shape[1]
        state, rows = extend(state, logits, trie, beams)
        if level == trie.vocabulary.levels - 1:
            break
        k = state.scores.shape[1]
        parent = (rows - torch.arange(n, device=rows.device).repeat_interleave(k) * previous).view(n, k, 1)
        fresh = torch.arange(width, width + k, device=columns.device).expand(n, k)[..., None]  # (n, k, 1)
        columns = torch.cat([columns.gather(1, parent.expand(-1, -1, level)), fresh], dim=2)  # (n, k, level + 1)
        width += k
        visible = torch.zeros(n, k, width, dtype=torch.bool, device=columns.device)  # (n, k, kv)
        visible[:, :, : prompt.shape[1]] = prompt[:, None]
        visible.scatter_(2, columns, True)  # ancestors and the token itself
        mask = torch.zeros(visible.shape, dtype=model.dtype, device=visible.device).masked_fill_(~visible, blocked)
        logits = model(
            input_ids=state.tokens[:, :, -1],  # (n, k) every beam's newest token, in its user's row
            attention_mask=mask[:, None],  # (n, 1, k, kv)
            position_ids=(start + level).expand(n, k),
            cache=cache,
            use_cache=True,
        ).logits.reshape(n * k, -1)  # (n * k, vocab)
    return finish(state, beams)


def left_aligned(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with padding after their tokens (n, T) -> the same rows with the padding before them, so every
    prompt ends in the last column, where generation continues."""
    width = input_ids.shape[1]
    shift = width - attention_mask.sum(dim=1, keepdim=True)  # (n, 1) padding of each row
    index = (torch.arange(width, device=input_ids.device) - shift) % width  # (n, T) a rotation right by shift
    return input_ids.gather(1, index), attention_mask.gather(1, index)


def prompt_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """(n, T) position ids counted from each row's first real token (padding gets 0; it is masked anyway)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


def decode_users(
    model: PreTrainedModel,
    trie: SIDTrie,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    beams: int,
    batch_size: int = 32,
    search: Search = beam_search,
) -> BeamResult:
    """``search`` (`beam_search` for TIGER, `causal_beam_search` for a causal LM) over many users in batches of
    ``batch_size`` users of similar input length.

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
        found = search(
            model,
            trie,
            torch.from_numpy(input_ids[rows, :width]).to(device),
            torch.from_numpy(attention_mask[rows, :width]).to(device),
            beams,
        )
        items[rows], scores[rows], tokens[rows] = (t.cpu().numpy() for t in found)
    return BeamResult(items, scores, tokens)
