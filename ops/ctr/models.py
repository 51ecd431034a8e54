"""The CTR backbones by name, and their configs' dict round trip (checkpoints and manifests store plain data)."""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

from torch import nn

from ops.ctr.autoint import AutoIntConfig, AutoIntPlus
from ops.ctr.dcnv2 import DCNv2, DCNv2Config
from ops.ctr.deepfm import DeepFM, DeepFMConfig
from ops.ctr.deepim import DeepIM, DeepIMConfig
from ops.ctr.features import FeatureSpec
from ops.quantizers.config import config_from_dict

ModelConfig = DeepFMConfig | DeepIMConfig | AutoIntConfig | DCNv2Config

MODELS: MappingProxyType[str, tuple[type[nn.Module], type]] = MappingProxyType(
    {
        "deepfm": (DeepFM, DeepFMConfig),
        "deepim": (DeepIM, DeepIMConfig),
        "autoint": (AutoIntPlus, AutoIntConfig),
        "dcnv2": (DCNv2, DCNv2Config),
    }
)


def _entry(backbone: str) -> tuple[type[nn.Module], type]:
    if backbone not in MODELS:
        raise ValueError(f"unknown CTR backbone {backbone!r}; known: {sorted(MODELS)}")
    return MODELS[backbone]


def default_config(backbone: str, test: bool = False) -> ModelConfig:
    """The backbone's default config, or its tiny ``test`` preset."""
    config_class = _entry(backbone)[1]
    return config_class.test() if test else config_class()


def model_config_from_dict(backbone: str, data: dict[str, Any]) -> ModelConfig:
    return config_from_dict(_entry(backbone)[1], data)


def build_model(backbone: str, config: ModelConfig, features: Sequence[FeatureSpec], fusion: bool) -> nn.Module:
    """A freshly initialised backbone (seed torch before calling for reproducible weights)."""
    model_class, config_class = _entry(backbone)
    if type(config) is not config_class:
        raise TypeError(f"{backbone} needs a {config_class.__name__}, got {type(config).__name__}")
    return model_class(config, features, fusion)
