"""What makes a stock `transformers` T5 (TIGER) train fast on a CPU: cheaper dropout, bf16-clean attention and
feed-forward layers.

Profiled on this 2-core CPU (TIGER, batch 256, bf16 autocast), a step is bound by passes over the encoder's
(batch, length, d_ff) activations, not by its matrix multiplications:
- torch's dropout draws one Mersenne-Twister number per element (``bernoulli_``): ~25% of a step;
- T5's "sdpa" attention falls back to an unfused math path whenever dropout is on, ~30% slower than "eager";
- T5's feed-forward casts its bf16 activations to float32 before ``wo`` (for fp16 checkpoints) and autocast
  casts them straight back, forward and backward: ~20% of a step in copies;
- adding T5's float32 position bias and mask to bf16 attention scores promotes the softmax and dropout to
  float32, and autocast casts the probabilities back for the value product.
`prepare_for_cpu_training` swaps in `FastDropout` everywhere, an eager attention (registered with
`transformers`' `AttentionInterface`) that uses it and stays in the scores' dtype, and `CpuFeedForward`, whose
ReLU and dropout are one masked multiply. The model stays a `T5ForConditionalGeneration` with the same weights,
the same state dict and the same float32 (eval, decoding) outputs.

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
from transformers.models.t5.modeling_t5 import T5DenseActDense

_LEVELS = 1 << 16  # distinct values of one 16-bit slice
ATTENTION = "semid_eager"  # the attention implementation name registered below


def _keep(x: torch.Tensor, p: float) -> torch.Tensor:
    """Bool mask shaped like ``x``, each element kept with probability 1 - p, drawn 16 bits per element."""
    n = x.numel()
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(1 << 63), None)
    slices = draws.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    return slices >= round(p * _LEVELS) - _LEVELS // 2


def _scaled(keep: torch.Tensor, p: float, dtype: torch.dtype) -> torch.Tensor:
    """The multiplier of inverted dropout: 1 / (1 - p) where kept, 0 elsewhere, in ``dtype``."""
    return keep.to(dtype).mul_(1.0 / (1.0 - p))


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` with drop probability ``p``, its mask drawn 16 bits per element."""
    if p == 0:
        return x
    if p == 1:
        return x * 0  # zeros that keep the graph (a zero gradient), as torch's dropout does
    return x * _scaled(_keep(x, p), p, x.dtype)  # one same-dtype multiply forward and backward


class _ReluDropout(torch.autograd.Function):
    """``fast_dropout(relu(x), p)`` as one mask: kept and positive. Backward is one multiply by the same mask,
    where ReLU then dropout cost a threshold pass, a second mask and their backward passes."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, p: float) -> torch.Tensor:
        multiplier = _scaled(_keep(x, p).logical_and_(x > 0), p, x.dtype)
        ctx.save_for_backward(multiplier)
        return x * multiplier

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (multiplier,) = ctx.saved_tensors
        return grad * multiplier, None


def relu_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``fast_dropout(torch.relu(x), p)``: the same random draws and values, fewer passes over ``x``.

    Finite inputs only: a dropped or negative element is ``x * 0`` (-0.0 for a negative ``x``, NaN for -inf).
    """
    if p in (0, 1):  # nothing to fuse: no mask, or no survivors
        return fast_dropout(torch.relu(x), p)
    return _ReluDropout.apply(x, p)


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

    The bias and the mask join the scores in the scores' dtype: under bf16 autocast the softmax, dropout and
    value product then stay bf16 (as fused GPU attention does), with no float32 copies of (heads, q, k) tensors.
    The mask is clamped to that dtype's lowest finite value first (float32's minimum rounds to -inf in bf16),
    so a row with every key masked gets uniform weights, as in T5, rather than NaN.
    Shapes: query (batch, heads, q_len, d_kv), key/value (batch, heads, k_len, d_kv) -> output (batch, q_len,
    heads, d_kv) and the attention weights (batch, heads, q_len, k_len), as `transformers` expects.
    """
    scores = torch.matmul(query, key.transpose(2, 3))  # (batch, heads, q_len, k_len)
    if scaling is not None and scaling != 1.0:  # T5 folds the scale into its weights: 1.0, no multiply
        scores = scores * scaling
    if position_bias is not None:
        scores = scores + position_bias.to(scores.dtype)
    if attention_mask is not None:
        scores = scores + attention_mask.clamp_min(torch.finfo(scores.dtype).min).to(scores.dtype)
    weights = torch.softmax(scores, dim=-1)
    if module.training:
        weights = fast_dropout(weights, dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(ATTENTION, eager_attention)
AttentionMaskInterface.register(ATTENTION, eager_mask)  # the additive float masks eager attention adds


class CpuFeedForward(T5DenseActDense):
    """T5's ReLU feed-forward (``wo(dropout(relu(wi(h))))``, same parameters) with ReLU and dropout fused, and
    without T5's cast of the activations to ``wo``'s dtype, which under autocast only round-trips them through
    float32. Only for layers whose ``wi`` and ``wo`` share a dtype (see `use_cpu_feed_forward`): then the
    activations already have ``wo``'s dtype without autocast, and outputs are unchanged."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden = self.wi(hidden_states)  # (batch, length, d_ff)
        hidden = relu_dropout(hidden, self.dropout.p) if self.training else torch.relu(hidden)
        return self.wo(hidden)


def use_cpu_feed_forward(model: nn.Module) -> nn.Module:
    """Turn every ReLU `T5DenseActDense` inside ``model`` into a `CpuFeedForward`, in place (same parameters).

    Layers of a half-precision checkpoint keep T5's class: `transformers` keeps their ``wo`` in float32, and
    they need T5's cast.
    """
    for module in model.modules():
        if (
            type(module) is T5DenseActDense
            and isinstance(module.act, nn.ReLU)
            and module.wi.weight.dtype == module.wo.weight.dtype
        ):
            module.__class__ = CpuFeedForward
    return model


def prepare_for_cpu_training(model: PreTrainedModel) -> PreTrainedModel:
    """FastDropout everywhere, the eager attention that uses it and the fused feed-forward, in place (GPUs fuse
    all three already)."""
    use_fast_dropout(model)
    use_cpu_feed_forward(model)
    model.set_attn_implementation(ATTENTION)
    return model
