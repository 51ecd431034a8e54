"""Tiny local decoders for the LoRA tests (a 2-layer LLaMA and a 2-layer OPT), and the precision switch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ops.device import Precision
from ops.llm.lora import LoraLM, LoraSettings, ModelSpec, build
from tests.ops.embeddings.conftest import ITEM_TEXTS
from tests.ops.embeddings.tiny_decoders import save_tiny_decoder

# Words of the LAMIA prompts (field names as task tokens) and of a MIND-like item, beside the Amazon texts.
EXTRA_TEXTS = [
    "title : abstract : category : subcategory : brand : categories : description :",
    "Yellowstone tourist injured ; A tourist suffered severe burns at a hot spring ; travel ; travelnews",
]
VOCAB_TEXTS = ITEM_TEXTS + EXTRA_TEXTS
PRECISIONS = [Precision.FLOAT32, Precision.BF16]  # training tests run with mixed precision off and on


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        kind: save_tiny_decoder(tmp_path_factory.mktemp(f"tiny-{kind}"), kind, VOCAB_TEXTS) for kind in ("llama", "opt")
    }


@pytest.fixture
def tiny_lm(tiny_dirs: dict[str, Path]) -> Callable[..., LoraLM]:
    """A fresh LoRA model on a tiny decoder: ``tiny_lm("llama", new_tokens=(...), bidirectional=True)``."""

    def make(kind: str = "llama", seed: int = 0, **spec: object) -> LoraLM:
        return build(ModelSpec(model=str(tiny_dirs[kind]), lora=LoraSettings.test(), **spec), seed=seed)

    return make
