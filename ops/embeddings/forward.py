"""One forward pass to token states, shared by encoding and by the attention probe."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def hidden_states(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Last layer's states, (batch, seq, dim). Positions count real tokens only, so a left-padded text gets the
    positions it has alone (LLaMA's default would start counting at the pads)."""
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)  # (batch, seq)
    output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
    return output.last_hidden_state
