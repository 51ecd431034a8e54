"""Embedders shared by the embedding tests: loaded once per session, always float32 on the CPU (exact checks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ops.device import cpu_placement
from ops.embeddings.config import SMOLLM2, TEST_CONFIG, EmbedderConfig, Pooling
from ops.embeddings.encoder import TransformerEmbedder
from ops.embeddings.model_cache import is_prepared, prepared_dir

# Hand-written item texts, in the Amazon template's shape: three pairs of near-duplicates.
ITEM_TEXTS = [
    "Matte Liquid Lipstick, Ruby Red; Glossier; Beauty, Makeup, Lips, Lipstick",
    "Long Lasting Creamy Lip Color, Coral Pink; Revlon; Beauty, Makeup, Lips, Lipstick",
    "Moisturizing Shampoo for Dry Damaged Hair, 12 oz; Pantene; Beauty, Hair Care, Shampoos",
    "Volumizing Shampoo with Biotin, 16 fl oz; OGX; Beauty, Hair Care, Shampoos",
    "Eau de Parfum Spray for Women, 1.7 oz; Chanel; Beauty, Fragrance, Women's",
    "Floral Eau de Toilette for Women, 3.4 oz; Versace; Beauty, Fragrance, Women's",
]
PAIR_OF = [1, 0, 3, 2, 5, 4]  # index of each text's near-duplicate


@pytest.fixture(scope="session")
def minilm() -> TransformerEmbedder:
    return TransformerEmbedder(TEST_CONFIG, cpu_placement())


@pytest.fixture(scope="session")
def smollm2_ready() -> Path:
    directory = prepared_dir(SMOLLM2)
    if not is_prepared(directory):
        pytest.skip(f"{SMOLLM2} is not prepared at {directory}: run `python -m ops.embeddings.model_cache`")
    return directory


@pytest.fixture(scope="session")
def smollm2(smollm2_ready: Path) -> Callable[[Pooling, bool], TransformerEmbedder]:
    """SmolLM2 embedders by (pooling, bidirectional), each loaded once."""
    loaded: dict[tuple[Pooling, bool], TransformerEmbedder] = {}

    def get(pooling: Pooling, bidirectional: bool) -> TransformerEmbedder:
        key = (pooling, bidirectional)
        if key not in loaded:
            config = EmbedderConfig(model=SMOLLM2, pooling=pooling, bidirectional=bidirectional, batch_size=8)
            loaded[key] = TransformerEmbedder(config, cpu_placement())
        return loaded[key]

    return get


@pytest.fixture(scope="session")
def tiny_opt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialized 2-layer OPT with a word-level tokenizer, saved like a hub checkpoint: exercises the
    hub loading path (``AutoTokenizer``/``AutoModel`` from a directory) with no download."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import OPTConfig, OPTForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-opt")
    specials = ["<s>", "<pad>", "</s>", "<unk>"]  # OPT's ids: pad 1, bos = eos 2
    words = sorted({w for text in ITEM_TEXTS for w in text.replace(";", " ").replace(",", " ").split()})
    vocab = {token: i for i, token in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 2)])  # OPT's BOS
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(directory)
    config = OPTConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        word_embed_proj_dim=32,
        ffn_dim=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    OPTForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_opt(tiny_opt_dir: Path) -> Callable[[Pooling, bool], TransformerEmbedder]:
    def get(pooling: Pooling, bidirectional: bool) -> TransformerEmbedder:
        config = EmbedderConfig(model=str(tiny_opt_dir), pooling=pooling, bidirectional=bidirectional, max_length=32)
        return TransformerEmbedder(config, cpu_placement())

    return get
