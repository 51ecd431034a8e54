"""The decoder-only Semantic-ID recommender: a small causal LM trained from scratch on flattened Semantic IDs.

It is a stock `transformers.Starcoder2ForCausalLM` (pre-norm blocks, rotary positions, a plain two-matrix
feed-forward, dropout on embeddings, attention weights and both residual branches), sized like TIGER's T5 so
their speeds compare at the same width and depth: d_model 128, 6 heads x 64, ReLU feed-forward 1024, dropout
0.1, 4 layers (TIGER: 4 encoder + 4 decoder layers of the same width). Starcoder2 rather than Llama because it
has T5's feed-forward and dropouts; everything it is trained and decoded with (`ops/retrieval/causal.py`,
`causal_beam_search`) takes any causal LM, a pretrained one included.

Two options, both off by default until a benchmark shows they help:
- ``level_embedding``: a learned vector per Semantic-ID level added to every token of that level (`LevelEmbedding`);
- ``init_from_codes``: code tokens start from the tokenizer's code vectors (`init_from_code_vectors`), so codes
  that lie close in the tokenizer's space start close here.

Checkpoints carry the config and the vocabulary next to the weights, so the model is rebuilt from the file alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Starcoder2Config, Starcoder2ForCausalLM

from ops.device import placement
from ops.retrieval.beam_search import causal_beam_search
from ops.retrieval.causal import next_item_task, training_windows
from ops.retrieval.checkpoint import load_model
from ops.retrieval.cpu_training import ATTENTION, fast_dropout
from ops.retrieval.sequences import Examples, SequenceConfig
from ops.retrieval.sid_data import Evaluation, SIDData, evaluate_search
from ops.retrieval.train import EpochCallback, FitResult, TrainConfig, fit, seeded
from ops.retrieval.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary

INIT_STD = 0.02  # weight init of every linear and embedding layer (GPT-2's and Starcoder2's family default)
DECODE_BATCH = 64  # users per beam-search batch (one key/value cache row per user, its beams included)
VALID_BEAMS = 20  # beams of the per-epoch validation (Recall@10 needs at least 10)


@dataclass(frozen=True)
class DecoderConfig:
    layers: int = 4  # TIGER's depth per stack (4 encoder + 4 decoder layers there)
    d_model: int = 128  # TIGER: model dimension 128
    n_heads: int = 6  # TIGER: 6 self-attention heads ...
    head_dim: int = 64  # ... of dimension 64 each
    d_ff: int = 1024  # TIGER: MLP dimension 1024 (ReLU, as T5's)
    dropout: float = 0.1  # TIGER: dropout 0.1 (embeddings, attention weights, attention and MLP outputs)
    level_embedding: bool = False  # add a learned vector per Semantic-ID level to its tokens (off: not shown to help)
    init_from_codes: bool = False  # code tokens start from the tokenizer's code vectors (off: not shown to help)
    sequence: SequenceConfig = field(default_factory=SequenceConfig)  # last 20 items + a hashed user token
    # 64 user windows per step: ~360 next-item targets on Beauty (5.6 per window), near TIGER's 256 examples
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=64))

    @classmethod
    def test(cls) -> DecoderConfig:
        return cls(
            layers=1,
            d_model=32,
            n_heads=2,
            head_dim=16,
            d_ff=64,
            dropout=0.0,
            sequence=SequenceConfig(max_history=5, user_buckets=50),
            train=TrainConfig.test(),
        )


class LevelEmbedding(nn.Embedding):
    """Token embeddings plus a learned vector per Semantic-ID level: ``E[t] + B[level(t)]`` (B[0] = 0 for the
    padding, EOS and user tokens). Keeps the token table as its ``weight``, so a tied LM head stays tied."""

    def __init__(self, tokens: nn.Embedding, vocabulary: Vocabulary) -> None:
        super().__init__(tokens.num_embeddings, tokens.embedding_dim, tokens.padding_idx)
        self.weight = tokens.weight
        token_level = torch.zeros(tokens.num_embeddings, dtype=torch.long)  # (vocab,) 1 + level, 0 = none
        for level, (offset, size) in enumerate(zip(vocabulary.offsets.tolist(), vocabulary.level_sizes)):
            token_level[offset : offset + size] = level + 1
        self.register_buffer("token_level", token_level, persistent=False)
        self.levels = nn.Embedding(vocabulary.levels + 1, tokens.embedding_dim, padding_idx=0)
        nn.init.normal_(self.levels.weight, std=INIT_STD)
        self.levels.weight.data[0] = 0.0

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids) + self.levels(self.token_level[input_ids])  # (..., d_model)


def build_decoder(config: DecoderConfig, vocabulary: Vocabulary) -> Starcoder2ForCausalLM:
    """A freshly initialised causal LM whose vocabulary is the Semantic-ID token layout."""
    longest = 1 + (config.sequence.max_history + 1) * vocabulary.levels  # user token + a full window
    lm = Starcoder2Config(
        vocab_size=vocabulary.size,
        hidden_size=config.d_model,
        intermediate_size=config.d_ff,
        num_hidden_layers=config.layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_heads,
        head_dim=config.head_dim,
        hidden_act="relu",
        max_position_embeddings=longest,
        initializer_range=INIT_STD,
        attention_dropout=config.dropout,
        residual_dropout=config.dropout,
        embedding_dropout=config.dropout,
        pad_token_id=PAD_TOKEN,
        bos_token_id=None,
        eos_token_id=EOS_TOKEN,
        tie_word_embeddings=True,  # as TIGER's T5
    )
    model = Starcoder2ForCausalLM(lm)
    if config.level_embedding:
        model.set_input_embeddings(LevelEmbedding(model.get_input_embeddings(), vocabulary))
    return model


def prepare_for_cpu_training(model: Starcoder2ForCausalLM) -> Starcoder2ForCausalLM:
    """Starcoder2's dropouts through `fast_dropout`, and the eager attention that uses it, in place (see
    ops/retrieval/cpu_training.py: torch's dropout draws one random number per element, ~13% of a decoder step).

    The embedding and residual dropouts are calls inside Starcoder2's forward code, so their rates move from the
    modules to forward hooks on the embeddings, attention and MLP outputs, exactly where Starcoder2 applies them.
    Hooks have no parameters: the state dict, checkpoints and eval-mode outputs are unchanged.
    """
    base = model.get_decoder()
    base.embed_tokens.register_forward_hook(_dropout_hook(base.embedding_dropout))
    base.embedding_dropout = 0.0
    for layer in base.layers:
        for module in (layer.self_attn, layer.mlp):
            module.register_forward_hook(_dropout_hook(module.residual_dropout))
            module.residual_dropout = 0.0
    model.set_attn_implementation(ATTENTION)
    return model


def _dropout_hook(p: float) -> Callable[[nn.Module, tuple, Any], Any]:
    """A forward hook applying `fast_dropout` with rate ``p`` to a module's output in training mode."""

    def hook(module: nn.Module, _: tuple, output: Any) -> Any:
        if not module.training or p == 0:
            return output
        if isinstance(output, tuple):  # attention: (output, weights)
            return (fast_dropout(output[0], p), *output[1:])
        return fast_dropout(output, p)

    return hook


def init_from_code_vectors(
    model: Starcoder2ForCausalLM, vocabulary: Vocabulary, code_vectors: list[np.ndarray], seed: int
) -> None:
    """Set each code level's token embeddings from that level's code vectors, in place.

    code_vectors: per code level (codebook_size, dim) (the suffix level keeps its random rows). Each level is
    centred, reduced to its top principal components (at most d_model), turned by a seeded random rotation into
    d_model dimensions and scaled to the embeddings' initial spread: distances between codes are kept up to scale.
    """
    weight = model.get_input_embeddings().weight  # (vocab, d_model)
    rng = np.random.default_rng(seed)
    if len(code_vectors) != vocabulary.levels - 1:
        raise ValueError(f"{len(code_vectors)} code levels for a vocabulary of {vocabulary.levels - 1}")
    for level, vectors in enumerate(code_vectors):
        if len(vectors) != vocabulary.level_sizes[level]:
            raise ValueError(f"level {level}: {len(vectors)} code vectors for {vocabulary.level_sizes[level]} codes")
        centred = vectors - vectors.mean(axis=0)  # (K, dim)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        rank = min(len(s), weight.shape[1])
        coordinates = u[:, :rank] * s[:rank]  # (K, rank) principal coordinates
        rotation, _ = np.linalg.qr(rng.standard_normal((weight.shape[1], rank)))  # (d_model, rank) orthonormal
        rows = coordinates @ rotation.T  # (K, d_model)
        rows *= INIT_STD / max(float(rows.std()), 1e-12)
        offset = int(vocabulary.offsets[level])
        with torch.no_grad():
            weight[offset : offset + len(rows)] = torch.from_numpy(rows).to(weight)


def train_decoder(
    config: DecoderConfig,
    data: SIDData,
    callback: EpochCallback | None = None,
    code_vectors: list[np.ndarray] | None = None,
) -> tuple[Starcoder2ForCausalLM, FitResult]:
    """Build the decoder for ``data``'s vocabulary and fit it; validation on a seeded sample of validation users.

    ``code_vectors`` (per code level) are required when ``config.init_from_codes`` is set.
    """
    if config.init_from_codes and code_vectors is None:
        raise ValueError("init_from_codes needs the tokenizer's code vectors")
    model = seeded(lambda: build_decoder(config, data.vocabulary), config.train.seed)
    if config.init_from_codes:
        init_from_code_vectors(model, data.vocabulary, code_vectors, config.train.seed)
    device = placement().device
    model.to(device)
    if device.type == "cpu":  # GPUs fuse dropout and attention already
        prepare_for_cpu_training(model)
    valid = data.validation_sample(config.train)
    windows = training_windows(data.sequences, config.sequence.max_history)
    task = next_item_task(
        model, data, windows, config.train.batch_size, lambda: evaluate(model, data, valid, VALID_BEAMS).metrics
    )
    return model, fit(model, task, config.train, callback)


def evaluate(model: Starcoder2ForCausalLM, data: SIDData, examples: Examples, beams: int) -> Evaluation:
    """Top-``beams`` items per example by the cached causal beam search, scored against the targets."""
    return evaluate_search(model, data, examples, beams, causal_beam_search, DECODE_BATCH)


def load_decoder(
    path: Path, device: torch.device | str = "cpu"
) -> tuple[Starcoder2ForCausalLM, DecoderConfig, Vocabulary]:
    """Rebuild (model in eval mode, config, vocabulary) from a `save_model` file."""
    return load_model(path, DecoderConfig, build_decoder, device)
