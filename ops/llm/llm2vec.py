"""LLM2Vec on the catalogue's item texts: bidirectional attention, then MNTP, then unsupervised SimCSE.

BehnamGhader et al. (2024) turn a decoder into a text encoder in three steps, because the switch alone makes it
worse (the model was never trained to read later tokens): (1) bidirectional attention, (2) masked next-token
prediction with LoRA, merged into the weights, (3) unsupervised SimCSE with a fresh LoRA, merged too. `adapt`
runs (2) and (3) through the one LoRA trainer and writes a plain ``transformers`` model directory that the
embedder loads like any other (`ops.embeddings.config.llm2vec_config`: bidirectional, mean pooling).

The ``llm2vec`` package (0.2.3, the latest) pins ``transformers<=4.44.2`` and imports attention classes that
transformers 5 removed (``LlamaFlashAttention2``, ``MistralFlashAttention2``): ``import llm2vec`` fails here, so
semid implements the recipe itself on `ops.embeddings.attention` (one config flag, probed on the real model),
with LLM2Vec's hyper-parameters as defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.embeddings.config import SMOLLM2
from ops.llm.language_modeling import next_token_loss
from ops.llm.lora import LoraLM, LoraSettings, ModelSpec, build, export_merged, read_checkpoint, save_checkpoint
from ops.llm.mntp import MNTPCollate, MNTPConfig
from ops.llm.simcse import SimCSEConfig, collate_texts, simcse_loss
from ops.llm.trainer import StepLog, TrainerConfig, TrainResult, train
from ops.quantizers.config import config_to_dict

MNTP_CHECKPOINT = "mntp.pt"  # `_run` names each phase's checkpoint after it
SIMCSE_CHECKPOINT = "simcse.pt"
MODEL_DIR = "model"  # the merged model, a plain transformers directory


@dataclass(frozen=True)
class LLM2VecConfig:
    model: str = SMOLLM2  # the decoder to adapt (MoC: LLaMA-3-8B; here the local SmolLM2-135M)
    mntp: MNTPConfig = field(default_factory=MNTPConfig)
    simcse: SimCSEConfig = field(default_factory=SimCSEConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)  # LLM2Vec: rank 16, alpha 32, dropout 0.05 (both steps)
    mntp_training: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(lr=5e-5, batch_size=32, micro_batch_size=8)
    )  # LLM2Vec: batch 32, the HF default lr 5e-5, 1000 steps; here one epoch over the items, or the budget
    simcse_training: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            lr=3e-5, batch_size=32, micro_batch_size=32, activation_checkpointing=True
        )
    )  # LLM2Vec: batch 128, lr 3e-5; 32 here on a CPU, no accumulation (negatives are the micro-batch's); two
    # forward graphs of 32 texts of 128 tokens peak at 23.5 GiB on SmolLM2 without activation checkpointing, 4.2 with
    seed: int = 0  # LoRA initialisation

    def mntp_part(self) -> dict[str, Any]:
        """The settings MNTP reads (all but SimCSE's): what versions the ``llm2vec_mntp`` stage."""
        return {
            "model": self.model,
            "mntp": config_to_dict(self.mntp),
            "lora": config_to_dict(self.lora),
            "mntp_training": config_to_dict(self.mntp_training),
            "seed": self.seed,
        }

    @classmethod
    def test(cls, model: str) -> LLM2VecConfig:
        training = TrainerConfig(lr=1e-2, batch_size=4, micro_batch_size=4, epochs=2)
        return cls(model, MNTPConfig.test(), SimCSEConfig.test(), LoraSettings.test(), training, training)


@dataclass(frozen=True)
class LLM2VecResult:
    model_dir: Path  # load with `llm2vec_config(model_dir)`
    mntp: TrainResult
    simcse: TrainResult
    n_texts: int  # distinct texts trained on


PhaseCallback = Callable[[str, StepLog], None]  # ("mntp" | "simcse", the step's log)


def adapt(
    texts: Sequence[str], config: LLM2VecConfig, folder: Path, callback: PhaseCallback | None = None
) -> LLM2VecResult:
    """Train both steps on the distinct ``texts``; write the two adapter checkpoints and the merged model into
    ``folder``."""
    mntp = train_mntp(texts, config, folder, callback)
    model_dir, simcse = train_simcse(texts, config, Path(folder) / MNTP_CHECKPOINT, folder, callback)
    return LLM2VecResult(model_dir, mntp, simcse, len(distinct_texts(texts)))


def distinct_texts(texts: Sequence[str]) -> list[str]:
    """The non-empty texts, first occurrence kept: a duplicate would be its own in-batch negative."""
    return list(dict.fromkeys(t for t in texts if t))


def train_mntp(
    texts: Sequence[str], config: LLM2VecConfig, folder: Path, callback: PhaseCallback | None = None
) -> TrainResult:
    """Step (2): MNTP with LoRA on the bidirectional decoder; the adapter goes to ``<folder>/mntp.pt``."""
    mntp_lm = build(ModelSpec(config.model, bidirectional=True, lora=config.lora), seed=config.seed)
    tokens = _tokenize(mntp_lm, distinct_texts(texts), config.mntp.max_length)
    collate = MNTPCollate(mntp_lm.tokenizer, config.mntp)
    return _run("mntp", mntp_lm, tokens, collate, next_token_loss, config.mntp_training, Path(folder), config, callback)


def train_simcse(
    texts: Sequence[str],
    config: LLM2VecConfig,
    mntp_checkpoint: Path,
    folder: Path,
    callback: PhaseCallback | None = None,
) -> tuple[Path, TrainResult]:
    """Step (3): SimCSE with a fresh LoRA on the decoder with ``mntp_checkpoint`` folded in; writes
    ``<folder>/simcse.pt`` and the merged model directory, which it returns with the run."""
    folder = Path(folder)
    simcse_spec = ModelSpec(
        config.model, bidirectional=True, attention_dropout=config.simcse.attention_dropout, lora=config.lora
    )
    simcse_lm = build(simcse_spec, merged=[read_checkpoint(mntp_checkpoint)], seed=config.seed)
    pad_id = simcse_lm.tokenizer.pad_token_id
    tokens = _tokenize(simcse_lm, distinct_texts(texts), config.simcse.max_length)
    loss = simcse_loss(config.simcse.temperature)
    simcse = _run(
        "simcse",
        simcse_lm,
        tokens,
        lambda b: collate_texts(b, pad_id),
        loss,
        config.simcse_training,
        folder,
        config,
        callback,
    )
    return export_merged(read_checkpoint(folder / SIMCSE_CHECKPOINT), folder / MODEL_DIR), simcse


def _tokenize(lm: LoraLM, texts: list[str], max_length: int) -> list[list[int]]:
    return lm.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []


def _run(
    phase: str,
    lm: LoraLM,
    examples: list[list[int]],
    collate: Callable[[Sequence[Any]], Any],
    loss_fn: Callable[..., Any],
    training: TrainerConfig,
    folder: Path,
    config: LLM2VecConfig,
    callback: PhaseCallback | None,
) -> TrainResult:
    """One phase through the trainer, checkpointing to ``<folder>/<phase>.pt`` (the latest state, the final last)."""
    meta = {"phase": phase, "llm2vec": config_to_dict(config)}
    path = folder / f"{phase}.pt"

    def checkpoint(step: int) -> None:
        save_checkpoint(lm, path, {**meta, "step": step})

    def on_step(log: StepLog) -> None:
        if callback is not None:
            callback(phase, log)

    return train(lm.model, examples, collate, loss_fn, training, on_step, checkpoint, description=f"llm2vec {phase}")
