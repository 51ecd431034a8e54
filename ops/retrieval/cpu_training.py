"""What makes a stock `transformers` T5 (TIGER) train fast on a CPU: cheaper dropout, eager attention using it.

Profiled on this 2-core CPU (TIGER, batch 256, bf16 autocast): torch's dropout draws one Mersenne-Twister
number per element (``bernoulli_``), which put dropout at ~25% of a training step, more than the matrix
multiplications; and T5's "sdpa" attention falls back to an unfused math path whenever dropout is on, ~30%
slower than "eager". `prepare_for_cpu_training` swaps in `FastDropout` everywhere, attention probabilities
included, through an eager attention function registered with `transformers`' `AttentionInterface`; the model
stays a stock `T5ForConditionalGeneration` with the same weights and the same eval-mode outputs.

`FastDropout` draws 64-bit numbers and slices each into four 16-bit ones, so one draw decides four elements.
An element is dropped when its 16-bit number falls below ``round(p * 65536)``: the drop probability is
``p`` to within 1 / 131072 (0.1 -> 0.100006), each element independent, seeded by torch's generator as
before. Everything else is `nn.Dropout`'s: kept values are scaled by ``1 / (1 - p)``, eval mode is identity.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

_LEVELS = 1 << 16  # distinct values of one 16-bit slice
ATTENTION = "semid_eager"  # the attention implementation name registered below


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` with drop probability ``p``, its mask drawn 16 bits per element."""
    if p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    n = x.numel()
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(1 << 63), None)
    slices = draws.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    keep = slices >= round(p * _LEVELS) - _LEVELS // 2
    mask = keep.to(x.dtype).mul_(1.0 / (1.0 - p))  # one same-dtype multiply forward and backward
    return x * mask


class FastDropout(nn.Dropout):
    """`nn.Dropout` (same ``p``, same contract) with its mask drawn 16 bits per element."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p) if self.training else x


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Replace every `nn.Dropout` inside ``model`` with a `FastDropout` of the same ``p``, in place.

    Dropout has no parameters, so the state dict, checkpoints and eval-mode outputs are unchanged.
    """
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p).train(child.training))  # new modules start in train mode
    return model


def eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **_: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """T5's eager attention (scores + position bias + mask, softmax, dropout, values) with `FastDropout`.

    Shapes: query (batch, heads, q_len, d_kv), key/value (batch, heads, k_len, d_kv) -> output (batch, q_len,
    heads, d_kv) and the attention weights (batch, heads, q_len, k_len), as `transformers` expects.
    """
    scores = torch.matmul(query, key.transpose(2, 3))  # (batch, heads, q_len, k_len)
    if scaling is not None and scaling != 1.0:  # T5 folds the scale into its weights: 1.0, no multiply
        scores = scores * scaling
    if position_bias is not None:
        scores = scores + position_bias
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1)
    if module.training:
        weights = fast_dropout(weights, dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, eager_attention)
AttentionMaskInterface.register(ATTENTION, eager_mask)  # the additive float masks eager attention adds


def prepare_for_cpu_training(model: PreTrainedModel) -> PreTrainedModel:
    """FastDropout everywhere and the eager attention that uses it, in place (GPUs fuse both already)."""
    use_fast_dropout(model)
    model.set_attn_implementation(ATTENTION)
    return model
