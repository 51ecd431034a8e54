"""Every tokenizer keeps the contract: forward(x) -> (quantized, codes, loss), codes_to_vectors(codes) == quantized."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ops.quantizers.kinds import build_tokenizer, scaling_factor
from ops.quantizers.moc import MoC, MoCConfig
from ops.quantizers.multi_embedding import MultiEmbedding, MultiEmbeddingConfig
from ops.quantizers.rqkmeans import RQKMeans, RQKMeansConfig
from ops.quantizers.rqvae import RQVAE, RQVAEConfig
from ops.quantizers.vq import CodebookUpdate
from ops.quantizers.vqvae import VQVAE, VQVAEConfig

CONFIGS = {
    "vqvae": VQVAEConfig.test(),
    "rqvae": RQVAEConfig.test(),
    "moc": MoCConfig.test(),
    "me": MultiEmbeddingConfig.test(),
    "rqkmeans": RQKMeansConfig.test(),
}
N_CODES = {"vqvae": 1, "rqvae": 3, "moc": 3, "me": 1, "rqkmeans": 3}
# (code vector width, codes per codebook) of the test presets: the latent for autoencoders, PCA's width for RQ-KMeans
CODE_SHAPE = {kind: (8, 16) for kind in CONFIGS}
AUTOENCODER_KINDS = ["vqvae", "rqvae", "moc", "me"]  # trained by gradient, with a VQ codebook update rule
# every autoencoder kind under both codebook updates; RQ-KMeans has no update rule (nothing moves its codes)
CASES = [(kind, update) for kind in AUTOENCODER_KINDS for update in CodebookUpdate] + [("rqkmeans", None)]


def with_update(config, update: CodebookUpdate | None):
    return config if update is None else dataclasses.replace(config, vq=dataclasses.replace(config.vq, update=update))


def initialized(config, x: torch.Tensor):
    torch.manual_seed(0)
    model = build_tokenizer(config)
    model.initialize(x)
    return model


@pytest.mark.parametrize(("kind", "update"), CASES)
def test_shapes_and_exact_round_trip(kind, update, embeddings):
    config = with_update(CONFIGS[kind], update)
    x = torch.from_numpy(embeddings)
    model = initialized(config, x)
    code_dim, codebook_size = CODE_SHAPE[kind]
    assert (model.code_dim, model.codebook_size, model.n_codes) == (code_dim, codebook_size, N_CODES[kind])
    for mode in (True, False):
        model.train(mode)
        quantized, codes, loss = model(x[:50])
        assert quantized.shape == (50, code_dim)
        assert codes.shape == (50, N_CODES[kind]) and codes.dtype == torch.long
        assert 0 <= codes.min() and codes.max() < codebook_size
        assert loss.shape == () and torch.isfinite(loss)
        if not (mode and update is CodebookUpdate.EMA):  # a training EMA step moves codes after the lookup
            assert torch.equal(model.codes_to_vectors(codes), quantized)  # bit for bit, not approximately
        assert model.codebook_vectors(codes).shape == (50, N_CODES[kind], code_dim)
    assert torch.equal(model.encode_codes(x[:50]), model(x[:50])[1])  # eval forward == frozen assignment


@pytest.mark.parametrize("kind", AUTOENCODER_KINDS)
def test_gradients_reach_encoder_decoder_and_codebooks(kind, embeddings):
    x = torch.from_numpy(embeddings)
    model = initialized(CONFIGS[kind], x)
    model.train()
    model(x[:64])[2].backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0  # through the straight-through estimator
    assert model.decoder[-1].weight.grad.abs().sum() > 0
    assert all(layer.codebook.grad.abs().sum() > 0 for layer in model.quantizer.layers)


def test_rq_levels_quantize_residuals_and_sum(embeddings):
    x = torch.from_numpy(embeddings)
    model = initialized(RQVAEConfig.test(), x).eval()
    z = model.encoder(x)
    quantized, codes, _ = model.quantizer(z)
    residual = z
    for level, layer in enumerate(model.quantizer.layers):
        distances = torch.cdist(residual, layer.codebook)  # (n, K)
        assert torch.equal(codes[:, level], distances.argmin(1))
        residual = residual - layer.codebook[codes[:, level]]
    per_level = model.codebook_vectors(codes)
    assert torch.equal(quantized, per_level.sum(1))
    assert torch.allclose(z - quantized, residual, atol=1e-6)


def test_moc_codebooks_pick_independently_and_average(embeddings):
    x = torch.from_numpy(embeddings)
    model = initialized(MoCConfig.test(), x).eval()
    z = model.encoder(x)
    quantized, codes, _ = model.quantizer(z)
    for i, layer in enumerate(model.quantizer.layers):
        assert torch.equal(codes[:, i], torch.cdist(z, layer.codebook).argmin(1))  # nearest to z itself
    assert torch.equal(quantized, model.codebook_vectors(codes).mean(1))
    assert not torch.equal(model.quantizer.layers[0].codebook, model.quantizer.layers[1].codebook)


def test_one_code_tokenizers_are_the_same_model(embeddings):
    """VQ-VAE, RQ-VAE with 1 level, MoC with 1 codebook and ME are one architecture: same seed, same codes."""
    from ops.quantizers.train import train_tokenizer

    base = VQVAEConfig.test()
    configs = [
        base,
        RQVAEConfig(1, base.vq, base.autoencoder, base.train),
        MoCConfig(1, base.vq, base.autoencoder, base.train),
        MultiEmbeddingConfig(7, base.vq, base.autoencoder, base.train),
    ]
    codes = [train_tokenizer(config, embeddings).codes for config in configs]
    assert all(np.array_equal(codes[0], other) for other in codes[1:])


def test_classes_kinds_and_scaling_factors():
    assert [type(build_tokenizer(c)) for c in CONFIGS.values()] == [VQVAE, RQVAE, MoC, MultiEmbedding, RQKMeans]
    assert [scaling_factor(c) for c in CONFIGS.values()] == [1, 3, 3, 2, 3]
    assert build_tokenizer(MultiEmbeddingConfig.test()).n_codes == 1  # M tables live downstream, not in codes


def test_training_free_tokenizer_has_nothing_for_an_optimizer(embeddings):
    model = initialized(RQKMeansConfig.test(), torch.from_numpy(embeddings))
    assert not any(p.requires_grad for p in model.parameters())
    assert all(p.requires_grad for p in build_tokenizer(RQVAEConfig.test()).encoder.parameters())
