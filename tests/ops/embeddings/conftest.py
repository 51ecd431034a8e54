"""Embedders shared by the embedding tests: loaded once per session, always float32 on the CPU (exact checks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ops.device import cpu_placement
from ops.embeddings.config import SMOLLM2, TEST_CONFIG, EmbedderConfig, Pooling
from ops.embeddings.encoder import TransformerEmbedder
from ops.embeddings.model_cache import is_prepared, prepared_dir
from tests.ops.embeddings.tiny_decoders import save_tiny_decoder

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
    return save_tiny_decoder(tmp_path_factory.mktemp("tiny-opt"), "opt", ITEM_TEXTS)


@pytest.fixture(scope="session")
def tiny_opt(tiny_opt_dir: Path) -> Callable[[Pooling, bool], TransformerEmbedder]:
    def get(pooling: Pooling, bidirectional: bool) -> TransformerEmbedder:
        config = EmbedderConfig(model=str(tiny_opt_dir), pooling=pooling, bidirectional=bidirectional, max_length=32)
        return TransformerEmbedder(config, cpu_placement())

    return get
