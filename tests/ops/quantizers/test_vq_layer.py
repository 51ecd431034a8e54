"""The single VQ layer: nearest code, loss terms, k-means init, EMA updates and dead-code restarts."""

from __future__ import annotations

import torch

from ops.quantizers.vq import CodebookUpdate, VectorQuantizer, VQConfig, quantization_loss, straight_through


def layer(codebook: list[list[float]], **overrides) -> VectorQuantizer:
    config = VQConfig(codebook_size=len(codebook), **{"kmeans_init": False, "dead_code_steps": 0, **overrides})
    vq = VectorQuantizer(len(codebook[0]), config, seed=0)
    vq.codebook.data = torch.tensor(codebook)
    if config.update is CodebookUpdate.EMA:
        vq.ema_sum.copy_(vq.codebook.data)
    return vq


def test_nearest_code_and_hand_computed_loss():
    vq = layer([[0.0, 0.0], [1.0, 1.0], [4.0, 0.0]])
    z = torch.tensor([[0.2, 0.1], [0.9, 1.2], [3.0, 0.0]], requires_grad=True)
    quantized, codes, loss = vq(z)
    assert codes[:, 0].tolist() == [0, 1, 2]
    assert torch.equal(quantized, torch.tensor([[0.0, 0.0], [1.0, 1.0], [4.0, 0.0]]))
    squared = (0.2**2 + 0.1**2 + 0.1**2 + 0.2**2 + 1.0**2) / 3  # mean over rows of ||z - zq||^2
    assert torch.isclose(loss, torch.tensor((1 + 0.25) * squared))  # codebook term + beta * commitment
    loss.backward()
    assert torch.allclose(z.grad, 0.25 * 2 * (z - quantized).detach() / 3)  # only the commitment reaches z
    assert vq.codebook.grad is not None


def test_ema_loss_is_commitment_only_and_codebook_moves_to_means():
    vq = layer([[0.0, 0.0], [10.0, 10.0]], update=CodebookUpdate.EMA, ema_decay=0.5)
    vq.train()
    z = torch.tensor([[1.0, 1.0], [3.0, 3.0], [9.0, 9.0]])
    zq, codes = vq.lookup(z)
    assert codes.tolist() == [0, 0, 1] and not vq.codebook.requires_grad
    assert torch.isclose(quantization_loss(z, zq, vq.config), torch.tensor(0.25 * (2 + 18 + 2) / 3))
    # count: 0.5*1 + 0.5*2 = 1.5, sum: 0.5*0 + 0.5*(4,4) = (2,2) -> code 0 = (4/3, 4/3) before smoothing
    assert torch.allclose(vq.codebook[0], torch.tensor([4 / 3, 4 / 3]), atol=1e-4)
    assert torch.allclose(vq.codebook[1], torch.tensor([9.5, 9.5]), atol=1e-4)  # (5 + 4.5) / (0.5 + 0.5)


def test_straight_through_value_is_exact_and_gradient_is_identity():
    z = torch.randn(5, 3, requires_grad=True)
    zq = torch.randn(5, 3)
    out = straight_through(z, zq)
    assert torch.equal(out, zq)
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones(5, 3))


def test_dead_codes_are_reseeded_from_current_latents():
    vq = layer([[0.0, 0.0], [100.0, 100.0], [-100.0, 50.0]], dead_code_steps=2)
    vq.train()
    z = torch.randn(16, 2) * 0.1
    for _ in range(2):
        _, codes = vq.lookup(z)
    assert set(codes.tolist()) == {0}  # the far codes are never picked ...
    vq.lookup(z)  # ... and on the next step they are restarted from rows of z
    rows = {tuple(row) for row in z.tolist()}
    assert tuple(vq.codebook[1].tolist()) in rows and tuple(vq.codebook[2].tolist()) in rows
    assert vq.idle_steps.max() <= 1


def test_kmeans_init_finds_separated_clusters():
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    z = (centres[:, None, :] + 0.01 * torch.randn(4, 50, 2)).reshape(-1, 2)
    vq = VectorQuantizer(2, VQConfig(codebook_size=4, dead_code_steps=0), seed=3)
    vq.initialize(z)
    nearest = torch.cdist(centres, vq.codebook).min(1).values
    assert nearest.max() < 0.05
    assert len(set(vq.nearest(z).tolist())) == 4
