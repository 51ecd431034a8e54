"""TIGER's sequence-to-sequence model: a small T5 trained from scratch on Semantic-ID tokens.

It is a stock `transformers.T5ForConditionalGeneration`, so `model.generate(..., num_beams=K,
prefix_allowed_tokens_fn=trie.allowed_tokens)` runs on it unchanged (the benchmark compares that decoder
with `ops.retrieval.beam_search`). Checkpoints carry the config and the vocabulary next to the weights, so
the model is rebuilt from the file alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

from ops.retrieval.checkpoint import load_model
from ops.retrieval.sequences import SequenceConfig
from ops.retrieval.train import TrainConfig
from ops.retrieval.vocabulary import EOS_TOKEN, PAD_TOKEN, Vocabulary


@dataclass(frozen=True)
class TIGERConfig:
    encoder_layers: int = 4  # TIGER: 4 encoder layers
    decoder_layers: int = 4  # TIGER: 4 decoder layers
    d_model: int = 128  # TIGER: input/model dimension 128
    n_heads: int = 6  # TIGER: 6 self-attention heads ...
    d_kv: int = 64  # ... of dimension 64 each
    d_ff: int = 1024  # TIGER: MLP dimension 1024
    dropout: float = 0.1  # TIGER: dropout 0.1
    sequence: SequenceConfig = field(default_factory=SequenceConfig)  # last 20 items + a hashed user token
    train: TrainConfig = field(default_factory=TrainConfig)  # AdamW 1e-3, warm-up 5% of the budget, cosine decay

    @classmethod
    def test(cls) -> TIGERConfig:
        return cls(
            encoder_layers=1,
            decoder_layers=1,
            d_model=32,
            n_heads=2,
            d_kv=16,
            d_ff=64,
            dropout=0.0,
            sequence=SequenceConfig(max_history=5, user_buckets=50),
            train=TrainConfig.test(),
        )


def build_tiger(config: TIGERConfig, vocabulary: Vocabulary) -> T5ForConditionalGeneration:
    """A freshly initialised T5 whose vocabulary is the Semantic-ID token layout."""
    t5 = T5Config(
        vocab_size=vocabulary.size,
        d_model=config.d_model,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        num_layers=config.encoder_layers,
        num_decoder_layers=config.decoder_layers,
        num_heads=config.n_heads,
        dropout_rate=config.dropout,
        feed_forward_proj="relu",
        pad_token_id=PAD_TOKEN,
        eos_token_id=EOS_TOKEN,
        decoder_start_token_id=PAD_TOKEN,
    )
    return T5ForConditionalGeneration(t5)


def load_tiger(
    path: Path, device: torch.device | str = "cpu"
) -> tuple[T5ForConditionalGeneration, TIGERConfig, Vocabulary]:
    """Rebuild (model in eval mode, config, vocabulary) from a `save_model` file."""
    return load_model(path, TIGERConfig, build_tiger, device)
