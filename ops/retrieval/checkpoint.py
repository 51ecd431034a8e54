"""Checkpoints of the Semantic-ID recommenders: config, vocabulary and weights in one file, so a model is rebuilt
from the file alone (``weights_only=True``: loading never runs pickled code)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from ops.quantizers.config import config_from_dict, config_to_dict
from ops.retrieval.vocabulary import Vocabulary
from ops.tables import write_atomic

C = TypeVar("C")
M = TypeVar("M", bound=nn.Module)


def save_model(model: nn.Module, config: Any, vocabulary: Vocabulary, path: Path) -> None:
    """``{"config", "vocabulary", "state_dict"}`` as plain data, written atomically."""
    payload: dict[str, Any] = {
        "config": config_to_dict(config),
        "vocabulary": {"level_sizes": list(vocabulary.level_sizes), "user_buckets": vocabulary.user_buckets},
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
    }
    write_atomic(path, lambda temporary: torch.save(payload, temporary))


def load_model(
    path: Path, config_class: type[C], build: Callable[[C, Vocabulary], M], device: torch.device | str = "cpu"
) -> tuple[M, C, Vocabulary]:
    """(model in eval mode on ``device``, config, vocabulary) of a `save_model` file; ``build`` makes the model."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = config_from_dict(config_class, payload["config"])
    vocabulary = Vocabulary(tuple(payload["vocabulary"]["level_sizes"]), payload["vocabulary"]["user_buckets"])
    model = build(config, vocabulary)
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), config, vocabulary
