"""Tiny randomly initialized decoders saved like hub checkpoints (config, word-level tokenizer, safetensors).

They exercise the real loading path (``AutoTokenizer`` / ``AutoModel*`` from a directory) with no download and
run in milliseconds: a 2-layer LLaMA (SmolLM2's architecture: RoPE, grouped-query attention, tied embeddings)
and a 2-layer OPT (LAMIA's paper backbone: learned positions, a 16 -> 32 input projection like OPT-350M's).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, OPTConfig, OPTForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3: OPT's pad 1 and bos = eos 2; LLaMA's bos 0, eos 2
MASK_WORD = "_"  # LLM2Vec's "blank" mask token for LLaMA-family tokenizers


def word_tokenizer(texts: Iterable[str], bos: str) -> PreTrainedTokenizerFast:
    """Word-level tokenizer over every word and punctuation mark of ``texts``; each text starts with ``bos``."""
    split = pre_tokenizers.Whitespace()
    words = sorted({piece for text in texts for piece, _ in split.pre_tokenize_str(text)} | {MASK_WORD})
    vocab = {token: i for i, token in enumerate(SPECIALS + [w for w in words if w not in SPECIALS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = split
    backend.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, vocab[bos])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def save_tiny_decoder(directory: Path, kind: str, texts: Iterable[str], seed: int = 0) -> Path:
    """A ``kind`` ("llama" or "opt") causal LM and its tokenizer over ``texts``, saved in ``directory``."""
    tokenizer = word_tokenizer(texts, bos="</s>" if kind == "opt" else "<s>")
    tokenizer.save_pretrained(directory)
    shared = {"vocab_size": len(tokenizer), "num_hidden_layers": 2, "num_attention_heads": 4, "pad_token_id": 1}
    init = 0.2  # 10x the default weight scale: logits span a few nats, so LoRA under a frozen tied head can fit a
    # tiny data set (at 0.02 the largest logit is ~0.6 and no loss falls far below log(vocab))
    if kind == "opt":
        config = OPTConfig(
            **shared,
            hidden_size=32,
            word_embed_proj_dim=16,
            ffn_dim=64,
            max_position_embeddings=128,
            bos_token_id=2,
            eos_token_id=2,
            dropout=0.0,
            attention_dropout=0.0,
            init_std=init,
        )
        model_class = OPTForCausalLM
    else:
        config = LlamaConfig(
            **shared,
            hidden_size=32,
            intermediate_size=64,
            num_key_value_heads=2,
            max_position_embeddings=128,
            tie_word_embeddings=True,
            bos_token_id=0,
            eos_token_id=2,
            initializer_range=init,
        )
        model_class = LlamaForCausalLM
    torch.manual_seed(seed)
    model_class(config).save_pretrained(directory)
    return Path(directory)
