"""Token states -> one vector per text. Both poolings find real tokens from the attention mask alone, so they are
correct whichever side the tokenizer pads on."""

from __future__ import annotations

import torch

from ops.embeddings.config import Pooling


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the real tokens' states. hidden (batch, seq, dim), mask (batch, seq) of 0/1 -> (batch, dim)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def last_token_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of each row's last real token (right padding: before the pads; left padding: the final column)."""
    positions = torch.arange(mask.shape[1], device=mask.device)  # (seq,)
    last = (mask.long() * positions).argmax(dim=1)  # (batch,) highest position holding a real token
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (batch, dim)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    return mean_pool(hidden, mask) if pooling is Pooling.MEAN else last_token_pool(hidden, mask)
