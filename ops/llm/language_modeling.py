"""Next-token prediction on chosen positions: the loss of causal LM fine-tuning and of LLM2Vec's MNTP alike.

Token ``i``'s label is predicted from the final state at position ``i - 1``. For a causal decoder that is
ordinary language modelling (labels = the tokens, -100 where no loss is wanted); for LLM2Vec's masked
next-token prediction the model is bidirectional, the inputs are masked and only masked positions carry labels
(`mntp`). The output head runs only on the positions that carry a label, not on every (token x vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ops.embeddings.batching import pad_batch
from ops.llm.lora import decoder_parts
from ops.llm.trainer import Batch, LossOutput

IGNORE = -100  # label of positions without a loss (the transformers convention)


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids counting real tokens only (left padding starts at 0 too). (batch, seq) -> (batch, seq)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


def final_states(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, seq) ids -> (batch, seq, dim) last-layer states of the model's body (no output head)."""
    body = decoder_parts(model).body
    output = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask))
    return output.last_hidden_state


def shifted_cross_entropy(head: nn.Module, states: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(mean cross-entropy of ``labels[:, i]`` given ``states[:, i - 1]``, labelled positions); states (batch,
    seq, dim), labels (batch, seq) with -100 where there is no loss. With no label the loss is a graph-connected
    0 (a 0/0 mean would be NaN)."""
    targets = labels[:, 1:]  # (batch, seq - 1): the label each position predicts
    picked = targets != IGNORE  # (batch, seq - 1)
    count = int(picked.sum())
    if count == 0:
        return states.sum() * 0.0, 0
    logits = head(states[:, :-1][picked])  # (count, vocab)
    return F.cross_entropy(logits.float(), targets[picked]), count


def next_token_loss(model: nn.Module, batch: Batch) -> LossOutput:
    """Language-model loss over the labelled positions (the weight: so accumulation is exact)."""
    states = final_states(model, batch["input_ids"], batch["attention_mask"])  # (batch, seq, dim)
    loss, count = shifted_cross_entropy(decoder_parts(model).head, states, batch["labels"])
    return LossOutput(loss, float(count), {"ce": loss.item()})


def collate_labelled(sequences: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> Batch:
    """(token ids, labels) pairs -> right-padded ``input_ids``, ``attention_mask`` and ``labels`` (padding: -100)."""
    input_ids, mask = pad_batch([ids for ids, _ in sequences], pad_id, "right")  # (batch, longest)
    labels, _ = pad_batch([labels for _, labels in sequences], IGNORE, "right")  # (batch, longest)
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}
