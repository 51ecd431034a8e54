"""Tokenizer checkpoints that carry their config: a model is rebuilt from the file alone (nanoGPT's habit)."""

from __future__ import annotations

from pathlib import Path

import torch

from ops.quantizers.autoencoder import Tokenizer
from ops.quantizers.config import config_to_dict
from ops.quantizers.kinds import build_tokenizer, config_for
from ops.tables import write_atomic


def save_checkpoint(model: Tokenizer, path: Path) -> None:
    """``{"kind", "config", "state_dict"}`` with plain-data config, written atomically (temp file + rename)."""
    payload = {
        "kind": model.kind,
        "config": config_to_dict(model.config),
        "state_dict": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
    }
    write_atomic(path, lambda temporary: torch.save(payload, temporary))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Tokenizer:
    """Rebuild the tokenizer in eval mode; ``weights_only=True`` so loading never runs pickled code."""
    payload = torch.load(Path(path), map_location=device, weights_only=True)
    model = build_tokenizer(config_for(payload["kind"], payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()
