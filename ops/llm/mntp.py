"""Masked next-token prediction (MNTP), LLM2Vec's first training step after the switch to bidirectional attention.

As LLM2Vec's ``run_mntp.py`` does with ``DataCollatorForLanguageModeling``: each eligible token is selected with
probability ``mask_probability`` (LLM2Vec: 0.2); a selected token is replaced by the mask token 80% of the
time (LLaMA-family tokenizers have none, so LLM2Vec's "blank" choice: ``_``), by a uniformly random token 10%,
and left as it is 10%. Only selected tokens carry a label, and -- what makes it *next*-token prediction --
token ``i``'s label is predicted from the output at position ``i - 1`` (`language_modeling.next_token_loss`),
so the pretrained LM head is reused unchanged.

Special tokens (BOS, EOS, padding, added tokens) are never selected, nor is position 0: no position ``-1``
predicts it, so LLM2Vec's shift drops its label anyway and masking it would only corrupt the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from ops.llm.language_modeling import IGNORE, collate_labelled
from ops.llm.trainer import Batch


@dataclass(frozen=True)
class MNTPConfig:
    mask_probability: float = 0.2  # LLM2Vec's LLaMA / Mistral configs
    mask_token: str = "_"  # LLM2Vec's "blank" mask for tokenizers without a mask token
    replace_with_mask: float = 0.8  # share of selected tokens shown as the mask token (BERT / HF collator)
    replace_with_random: float = 0.1  # share shown as a random token; the rest are left unchanged
    max_length: int = 128  # tokens kept per item text (Amazon's `title; brand; categories` is ~40)
    seed: int = 0  # the masking draws

    def __post_init__(self) -> None:
        if not 0 < self.mask_probability < 1 or self.replace_with_mask + self.replace_with_random > 1:
            raise ValueError(f"invalid MNTP config {self}")

    @classmethod
    def test(cls) -> MNTPConfig:
        return cls(max_length=32)


def mask_tokens(
    input_ids: torch.Tensor,
    eligible: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    config: MNTPConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked inputs, labels), both like ``input_ids`` (batch, seq); ``eligible`` (batch, seq) bool says which
    tokens may be selected. Labels are the original tokens where selected, -100 elsewhere."""
    draws = torch.rand(input_ids.shape, generator=generator)  # (batch, seq) selection
    selected = eligible & (draws < config.mask_probability)
    kind = torch.rand(input_ids.shape, generator=generator)  # (batch, seq) mask / random / keep
    to_mask = selected & (kind < config.replace_with_mask)
    to_random = (
        selected & (kind >= config.replace_with_mask) & (kind < config.replace_with_mask + config.replace_with_random)
    )
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    inputs = torch.where(to_mask, mask_id, torch.where(to_random, random_ids, input_ids))
    labels = torch.where(selected, input_ids, IGNORE)
    return inputs, labels


class MNTPCollate:
    """Token-id lists -> a masked, right-padded batch for `next_token_loss`; draws new masks every call (dynamic
    masking, as the HF collator: each epoch sees other masks), reproducibly from the config's seed."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: MNTPConfig) -> None:
        self.config = config
        self.pad_id = tokenizer.pad_token_id
        self.mask_id = tokenizer.convert_tokens_to_ids(config.mask_token)
        if self.mask_id is None or self.mask_id == tokenizer.unk_token_id:
            raise ValueError(f"mask token {config.mask_token!r} is not one token of this vocabulary")
        self.vocab_size = len(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))
        self.generator = torch.Generator().manual_seed(config.seed)

    def __call__(self, sequences: Sequence[Sequence[int]]) -> Batch:
        batch = collate_labelled([(ids, ids) for ids in sequences], self.pad_id)
        ids, real = batch["input_ids"], batch["attention_mask"].bool()  # (batch, seq)
        eligible = real & ~torch.isin(ids, self.special_ids)
        eligible[:, 0] = False  # nothing predicts position 0
        inputs, labels = mask_tokens(ids, eligible, self.mask_id, self.vocab_size, self.config, self.generator)
        return {"input_ids": inputs, "attention_mask": batch["attention_mask"], "labels": labels}
