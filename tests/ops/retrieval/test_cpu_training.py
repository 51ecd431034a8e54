"""FastDropout keeps nn.Dropout's contract: drop rate p, kept values scaled by 1/(1-p), identity in eval mode,
gradients through the same mask, seeded by torch's generator; swapping it into a model leaves its weights be.
The fused ReLU + dropout and the feed-forward using it compute what their unfused forms compute, gradients
included; the attention keeps bf16 scores bf16."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn
from transformers.models.t5.modeling_t5 import T5DenseActDense

from ops.retrieval.cpu_training import (
    CpuFeedForward,
    FastDropout,
    eager_attention,
    fast_dropout,
    prepare_for_cpu_training,
    relu_dropout,
    use_cpu_feed_forward,
    use_fast_dropout,
)
from ops.retrieval.model import TIGERConfig, build_tiger
from ops.retrieval.vocabulary import Vocabulary


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drops_a_fraction_p_and_rescales_the_rest(p):
    torch.manual_seed(0)
    x = torch.rand(1000, 1000) + 1.0  # no zeros of its own
    out = FastDropout(p).train()(x)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - p) < 0.002  # 1e6 Bernoulli draws: std of the rate < 0.0005
    torch.testing.assert_close(out[~dropped], x[~dropped] / (1 - p))


def test_mask_has_no_structure_across_positions():
    torch.manual_seed(0)
    out = FastDropout(0.5).train()(torch.ones(4000, 64))
    rates = (out == 0).float().mean(dim=0)  # per column: every 4th element shares a 64-bit draw
    assert rates.min() > 0.45 and rates.max() < 0.55
    same = ((out[:, 0::4] == 0) == (out[:, 1::4] == 0)).float().mean().item()  # neighbours from one draw
    assert abs(same - 0.5) < 0.02  # independent: agree half the time


def test_eval_mode_is_identity_and_seeding_reproduces_the_mask():
    x = torch.randn(64, 33)
    layer = FastDropout(0.3)
    assert layer.eval()(x) is x
    layer.train()
    torch.manual_seed(1)
    first = layer(x)
    torch.manual_seed(1)
    assert torch.equal(first, layer(x))
    assert not torch.equal(first, layer(x))


def test_gradient_flows_through_the_kept_elements_only():
    torch.manual_seed(0)
    x = torch.randn(50, 40, requires_grad=True)
    out = FastDropout(0.25).train()(x)
    out.sum().backward()
    kept = out.detach() != 0
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


def test_swapping_into_a_model_keeps_its_weights_and_eval_outputs():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1), nn.Sequential(nn.ReLU(), nn.Dropout(0.2)), nn.Linear(8, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 8)
    expected = model.eval()(x)
    use_fast_dropout(model)
    assert [type(m) for m in model.modules() if isinstance(m, nn.Dropout)] == [FastDropout, FastDropout]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.2]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    torch.testing.assert_close(model.eval()(x), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_relu_dropout_is_dropout_of_relu_with_the_same_draws_and_gradient(dtype, p):
    x = torch.randn(37, 129).to(dtype)  # an element count that is not a multiple of the four slices per draw
    fused_input, plain_input = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(3)
    fused = relu_dropout(fused_input, p)
    torch.manual_seed(3)
    plain = fast_dropout(torch.relu(plain_input), p)
    assert fused.dtype == dtype and torch.equal(fused, plain)
    upstream = torch.randn_like(fused)
    fused.backward(upstream)
    plain.backward(upstream)
    assert torch.equal(fused_input.grad, plain_input.grad)


def test_cpu_feed_forward_matches_t5s_in_eval_and_in_training():
    config = build_tiger(replace(TIGERConfig.test(), dropout=0.3), Vocabulary((8, 8, 3), 50)).config
    stock = use_fast_dropout(T5DenseActDense(config))
    fused = use_cpu_feed_forward(copy.deepcopy(stock))
    assert type(fused) is CpuFeedForward and all(
        torch.equal(a, b) for a, b in zip(stock.parameters(), fused.parameters())
    )
    x = torch.randn(4, 7, config.d_model)
    torch.testing.assert_close(fused.eval()(x), stock.eval()(x), rtol=0, atol=0)
    stock.train()
    fused.train()
    torch.manual_seed(5)
    expected = stock(x)
    expected.sum().backward()
    torch.manual_seed(5)
    actual = fused(x)
    actual.sum().backward()
    torch.testing.assert_close(actual, expected)
    for a, b in zip(stock.parameters(), fused.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("dropout", [fast_dropout, relu_dropout])
def test_p_one_drops_everything_and_passes_a_zero_gradient(dropout):
    x = torch.randn(6, 5, requires_grad=True)
    out = dropout(x, 1.0)
    out.sum().backward()
    assert torch.equal(out, torch.zeros(6, 5)) and torch.equal(x.grad, torch.zeros(6, 5))


def test_half_precision_feed_forward_keeps_t5s_cast():
    config = build_tiger(TIGERConfig.test(), Vocabulary((8, 8, 3), 50)).config
    layer = T5DenseActDense(config)
    layer.wi.to(torch.bfloat16)  # a bf16 checkpoint: transformers keeps wo in float32
    assert type(use_cpu_feed_forward(layer)) is T5DenseActDense
    assert layer.eval()(torch.randn(2, 3, config.d_model, dtype=torch.bfloat16)).dtype == torch.float32


def test_attention_keeps_bf16_scores_bf16():
    module = nn.Module().eval()
    query, key, value = (torch.randn(3, 3, 5, 4, dtype=torch.bfloat16) for _ in range(3))
    bias = torch.randn(1, 3, 5, 5)  # float32, as T5 computes it
    mask = torch.zeros(3, 1, 5, 5)
    mask[0, ..., 3:] = torch.finfo(torch.float32).min  # padded keys of the first row
    mask[2] = torch.finfo(torch.float32).min  # a row with every key masked: -inf once cast to bf16
    output, weights = eager_attention(module, query, key, value, mask, position_bias=bias)
    assert output.dtype == weights.dtype == torch.bfloat16 and output.shape == (3, 5, 3, 4)
    assert torch.all(weights[0, ..., 3:] == 0)
    expected = torch.softmax(query.float() @ key.float().transpose(2, 3) + bias + mask, dim=-1)
    torch.testing.assert_close(weights[:2].float(), expected[:2], atol=0.02, rtol=0.02)
    assert torch.isfinite(weights[2]).all()  # T5 gives such a row (nearly) uniform weights, not NaN


def test_prepared_tiger_under_bf16_autocast_stays_close_to_t5():
    torch.manual_seed(0)
    model = build_tiger(TIGERConfig.test(), Vocabulary((8, 8, 3), 50)).eval()
    ids = torch.randint(2, model.config.vocab_size, (4, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    labels = torch.randint(2, model.config.vocab_size, (4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        prepare_for_cpu_training(model)
        actual = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
    assert torch.isfinite(actual)
    torch.testing.assert_close(actual, expected, atol=0.02, rtol=0.01)


def test_prepared_tiger_keeps_its_eval_outputs_and_trains_with_dropout():
    torch.manual_seed(0)
    model = build_tiger(replace(TIGERConfig.test(), dropout=0.5), Vocabulary((8, 8, 3), 50)).eval()
    ids = torch.randint(2, model.config.vocab_size, (4, 9))
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # padding exercises the additive mask
    labels = torch.randint(2, model.config.vocab_size, (4, 4))
    expected = model(input_ids=ids, attention_mask=mask, labels=labels).logits
    prepare_for_cpu_training(model)
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert not any(type(m) is T5DenseActDense for m in model.modules())
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask, labels=labels).logits, expected)
    model.train()
    output = model(input_ids=ids, attention_mask=mask, labels=labels)
    output.loss.backward()
    assert torch.isfinite(output.loss) and not torch.allclose(output.logits, expected)
    assert all(p.grad is not None for p in model.parameters())
