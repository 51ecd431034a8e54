"""The LLM as recommender: a pretrained causal LM reads and writes Semantic IDs as new tokens of its vocabulary.

The backbone is SmolLM2-135M from the local model cache by default, any `transformers` causal LM by config. What
it shares with the decoder-only recommender trained from scratch (`ops.retrieval.decoder`) is everything but the
model: the windows and the loss of ``causal.py`` (every target of a user in one pass, cross-entropy on the
Semantic-ID tokens only, as LAMIA section 4.2.4 asks of an LLM backbone), the `fit` loop (wall-clock budget,
early stopping on validation Recall@10, progress-following schedule, ``precision``) and `causal_beam_search`
(one prefill, one cached step per level, only real items). What it adds:

- tokens (`llm_tokens`): one special token per (level, code), collision-suffix value and user bucket, their rows
  started at the mean of the pretrained rows (or at the tokenizer's code vectors); `SIDTokenMap` places the
  Semantic-ID layout at the LLM's ids, so the shared code runs on the LLM's own vocabulary;
- prompts (`llm_prompts`): a short instruction before the history, each item's title after its tokens (optional);
- LoRA (`ops.llm.lora`): adapters on every linear layer but the head, rank configurable, plus trainable rows for
  the new tokens only (a tied head, SmolLM2's, shares them; an untied head gets its own); the pretrained weights
  never change, and no copy of the whole embedding matrix is trained;
- alignment (LC-Rec's text-to-item task, LAMIA's supplementary objective): with ``alignment`` on, training runs in
  two phases, each one `fit` with its share of the budget and epochs: phase 1 trains next-item windows jointly
  with ``alignment_batch`` items per step (title -> Semantic ID and back), phase 2 next-item windows alone. The
  weights of the best validated epoch of either phase are kept.

A training sample is a next-item target (phase 1 adds two per aligned item), so samples/s compares with the
decoder's targets/s. Checkpoints are `ops.llm.lora` files (adapters, new rows, base model name, LoRA settings)
whose meta holds this config and the token layout: the model is rebuilt from the file and the base model alone.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ops.caching import file_digest
from ops.device import placement
from ops.embeddings.config import SMOLLM2
from ops.embeddings.models import resolve_model
from ops.llm.lora import LoraLM, LoraSettings, ModelSpec, build, load_checkpoint, read_checkpoint, save_checkpoint
from ops.quantizers.config import config_from_dict, config_to_dict
from ops.retrieval.beam_search import causal_beam_search
from ops.retrieval.causal import next_item_task, on_device, token_losses, training_windows
from ops.retrieval.cpu_training import use_fast_dropout
from ops.retrieval.decoder import DECODE_BATCH, VALID_BEAMS
from ops.retrieval.llm_prompts import PromptConfig, Prompter
from ops.retrieval.llm_tokens import NewRows, SIDTokenMap, initialise_rows, token_strings
from ops.retrieval.sequences import Examples, SequenceConfig
from ops.retrieval.sid_data import Evaluation, SIDData, evaluate_search
from ops.retrieval.train import SELECTION_METRIC, EpochCallback, FitResult, Task, TrainConfig, fit
from ops.retrieval.vocabulary import Vocabulary

SEARCH = functools.partial(causal_beam_search, last_logits_only=True)  # the prefill's head on the last position only


@dataclass(frozen=True)
class LLMRecommenderConfig:
    model: str = SMOLLM2  # any transformers causal LM: a local-cache name, a model folder or a hub id
    lora: LoraSettings = field(default_factory=lambda: LoraSettings(rank=8, alpha=32, dropout=0.05))  # LC-Rec's
    new_rows: NewRows = NewRows.MEAN  # how the new tokens' rows start (see llm_tokens)
    spread: float = 0.1  # new rows' spread around the mean, in RMS deviations of the pretrained rows from it
    prompt: PromptConfig = field(default_factory=PromptConfig)  # instruction, titles off
    alignment: bool = False  # phase 1: next-item + text-to-item alignment jointly; phase 2: next-item alone
    alignment_share: float = 0.5  # phase 1's share of the budget and of max_epochs
    alignment_batch: int = 8  # items per phase-1 step, each in both directions (two rows)
    sequence: SequenceConfig = field(default_factory=lambda: SequenceConfig(user_buckets=0))  # last 20 items; the
    # prompt's instruction opens the history instead of a hashed user token
    # 8 user windows per step (~45 next-item targets on Beauty) keep a 135M-parameter step near seconds on a CPU;
    # 500 validation users per epoch: each costs a prefill of ~100 tokens through the whole LLM
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=8, eval_users=500))

    def __post_init__(self) -> None:
        object.__setattr__(self, "new_rows", NewRows(self.new_rows))  # a plain string from JSON/checkpoints
        if self.spread < 0 or not 0 < self.alignment_share < 1 or self.alignment_batch < 1:
            raise ValueError(f"spread must be >= 0, alignment_share in (0, 1), alignment_batch >= 1, got {self}")

    @property
    def needs_titles(self) -> bool:
        return self.prompt.titles or self.alignment

    @classmethod
    def test(cls, model: str) -> LLMRecommenderConfig:
        return cls(
            model=model,
            lora=LoraSettings.test(),
            alignment_batch=4,
            sequence=SequenceConfig(max_history=5, user_buckets=0),
            train=TrainConfig.test(),
        )


@dataclass
class LLMRecommender:
    """A LoRA-wrapped LLM holding the Semantic-ID tokens of one layout, and what its prompts need."""

    lm: LoraLM  # tokenizer and peft model (what is saved)
    tokens: SIDTokenMap
    config: LLMRecommenderConfig
    titles: tuple[str, ...] | None  # (n_items,) per Semantic-ID table row; None when the config needs none

    @property
    def model(self) -> PreTrainedModel:
        """The `transformers` model, LoRA layers and new rows inside: what the losses and the beam search call."""
        return self.lm.model.get_base_model()

    def prompter(self, data: SIDData) -> Prompter:
        """Prompts over ``data`` (a `SIDData` of this layout, as `SIDData.build` makes it)."""
        placed = data.with_vocabulary(self.tokens.vocabulary)
        return Prompter.build(self.lm.tokenizer, self.tokens, placed, self.config.prompt, self.titles)

    def search(self, prompter: Prompter, examples: Examples, beams: int) -> Evaluation:
        """Top-``beams`` items per example by the cached trie-constrained beam search on the prompts."""
        return evaluate_search(self.model, prompter.data, examples, beams, SEARCH, DECODE_BATCH, prompter.prompts)


def build_recommender(
    config: LLMRecommenderConfig,
    layout: Vocabulary,
    titles: Sequence[str] | None = None,
    code_vectors: list[np.ndarray] | None = None,
) -> LLMRecommender:
    """The base LLM with ``layout``'s tokens added, their rows initialised, and a fresh LoRA (outputs = the base's
    on old tokens). ``code_vectors`` (per code level) are required when ``config.new_rows`` is ``codes``."""
    if config.new_rows == NewRows.CODES and code_vectors is None:
        raise ValueError("new_rows='codes' needs the tokenizer's code vectors")
    if config.needs_titles and titles is None:
        raise ValueError("titled prompts and the alignment task need the items' titles")
    vectors = code_vectors if config.new_rows == NewRows.CODES else None

    def prepare(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> None:
        tokens = SIDTokenMap.from_tokenizer(layout, tokenizer)
        initialise_rows(model, tokens, config.spread, config.train.seed, vectors)

    spec = ModelSpec(config.model, new_tokens=token_strings(layout), lora=config.lora)
    lm = build(spec, seed=config.train.seed, prepare=prepare)
    kept = tuple(titles) if config.needs_titles else None  # titles were checked above
    return LLMRecommender(lm, SIDTokenMap.from_tokenizer(layout, lm.tokenizer), config, kept)


def train_llm_recommender(
    config: LLMRecommenderConfig,
    data: SIDData,
    titles: Sequence[str] | None = None,
    callback: EpochCallback | None = None,
    code_vectors: list[np.ndarray] | None = None,
) -> tuple[LLMRecommender, FitResult, list[dict[str, Any]]]:
    """Build the recommender for ``data``'s layout and fit it (one phase, or two with ``alignment``).

    Returns the recommender holding the best validated weights, the fit over both phases (epochs numbered on) and
    a summary per phase."""
    recommender = build_recommender(config, data.vocabulary, titles, code_vectors)
    device = placement().device
    recommender.lm.model.to(device)
    if device.type == "cpu":  # LoRA's dropout through the CPU's cheaper mask (GPUs fuse dropout already)
        use_fast_dropout(recommender.lm.model)
    prompter = recommender.prompter(data)
    valid = data.validation_sample(config.train)
    model = recommender.model
    windows = training_windows(prompter.data.sequences, config.sequence.max_history)
    next_item = next_item_task(
        model,
        prompter.data,
        windows,
        config.train.batch_size,
        lambda: recommender.search(prompter, valid, VALID_BEAMS).metrics,
        prompter.next_item_rows,
    )
    if not config.alignment:
        result = fit(recommender.lm.model, next_item, config.train, callback)
        return recommender, result, [_phase("next_item", result)]
    first, second = _phase_configs(config)
    joint = alignment_task(model, next_item, prompter, config.alignment_batch)
    aligned = fit(recommender.lm.model, joint, first, callback)
    kept = _trainable_state(recommender.lm.model)
    offset = len(aligned.history)
    shifted = None if callback is None else lambda log: callback(replace(log, epoch=log.epoch + offset))
    alone = fit(recommender.lm.model, next_item, second, shifted)
    if aligned.best_valid[SELECTION_METRIC] > alone.best_valid[SELECTION_METRIC]:
        _restore(recommender.lm.model, kept)
    phases = [_phase("next_item+alignment", aligned), _phase("next_item", alone)]
    return recommender, _joined(aligned, alone), phases


def alignment_task(
    model: PreTrainedModel, next_item: Task[Examples], prompter: Prompter, items_per_step: int
) -> Task[tuple[Examples, np.ndarray]]:
    """Phase 1: each step is one next-item batch plus ``items_per_step`` aligned items (both directions), the
    items drawn from a fresh permutation of `Prompter.alignment_items` each epoch (cycled when the epoch has more
    steps than items). The loss is the mean over all labelled tokens of both."""
    items = prompter.alignment_items()
    if not len(items):
        raise ValueError("the alignment task found no item with a title in the training sequences")

    def batches(rng: np.random.Generator) -> list[tuple[Examples, np.ndarray]]:
        windows = list(next_item.batches(rng))
        drawn = np.resize(rng.permutation(items), len(windows) * items_per_step)  # np.resize cycles
        return list(zip(windows, drawn.reshape(len(windows), items_per_step)))

    def loss(batch: tuple[Examples, np.ndarray]) -> tuple[torch.Tensor, int]:
        windows, aligned = batch
        targets = token_losses(model, *on_device(model, prompter.next_item_rows(windows)))
        texts = token_losses(model, *on_device(model, prompter.alignment_rows(aligned)))
        return torch.cat([targets, texts]).mean(), int((windows.length - 1).sum()) + 2 * len(aligned)

    return Task(batches=batches, loss=loss, validate=next_item.validate)


def evaluate(recommender: LLMRecommender, data: SIDData, examples: Examples, beams: int) -> Evaluation:
    """Top-``beams`` items per example of ``data`` (the layout `SIDData.build` makes), scored against the targets;
    the generated tokens come back in ``data``'s layout, so they compare with its table directly."""
    found = recommender.search(recommender.prompter(data), examples, beams)
    tokens = recommender.tokens.to_layout(found.beams.tokens)  # (n, beams, levels)
    return replace(found, beams=replace(found.beams, tokens=tokens))


def save_recommender(recommender: LLMRecommender, path: Path) -> None:
    """An `ops.llm.lora` checkpoint whose meta holds the config and the token layout."""
    layout = recommender.tokens.layout
    meta = {
        "recommender": config_to_dict(recommender.config),
        "layout": {"level_sizes": list(layout.level_sizes), "user_buckets": layout.user_buckets},
        "first_id": recommender.tokens.first_id,
    }
    save_checkpoint(recommender.lm, path, meta)


def load_recommender(
    path: Path, titles: Sequence[str] | None = None, device: torch.device | str = "cpu"
) -> LLMRecommender:
    """Rebuild a `save_recommender` file (eval mode, on ``device``); ``titles`` as at training when it used them."""
    meta = read_checkpoint(path)["meta"]
    config = config_from_dict(LLMRecommenderConfig, meta["recommender"])
    layout = Vocabulary(tuple(meta["layout"]["level_sizes"]), meta["layout"]["user_buckets"])
    if config.needs_titles and titles is None:
        raise ValueError(f"{path} was trained with titles: pass the items' titles")
    lm = load_checkpoint(path)
    tokens = SIDTokenMap.from_tokenizer(layout, lm.tokenizer)
    if tokens.first_id != meta["first_id"]:
        raise ValueError(
            f"the base model's tokenizer placed the new tokens at {tokens.first_id}, not {meta['first_id']}"
        )
    lm.model.to(device).eval()
    return LLMRecommender(lm, tokens, config, tuple(titles) if config.needs_titles else None)


def model_digest(name: str) -> str:
    """sha256 over a base model's files (relative names and bytes): a stage is a new version whenever the weights
    or the tokenizer under a name change. A hub id without a local folder can only be named."""
    source = Path(resolve_model(name))
    if not source.is_dir():
        return f"name:{name}"
    digest = hashlib.sha256()
    for file in sorted(path for path in source.rglob("*") if path.is_file()):
        digest.update(file.relative_to(source).as_posix().encode())
        digest.update(file_digest(file).encode())
    return digest.hexdigest()


def _phase_configs(config: LLMRecommenderConfig) -> tuple[TrainConfig, TrainConfig]:
    """Phase 1's and phase 2's training configs: the budget and max_epochs split by ``alignment_share``."""
    train, share = config.train, config.alignment_share
    epochs = max(1, round(train.max_epochs * share))
    first = replace(train, max_train_seconds=train.max_train_seconds * share, max_epochs=epochs)
    second = replace(
        train, max_train_seconds=train.max_train_seconds * (1 - share), max_epochs=max(1, train.max_epochs - epochs)
    )
    return first, second


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the trained tensors (LoRA and new rows): all that differs between two epochs' weights."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def _restore(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in state:
                parameter.copy_(state[name])


def _joined(first: FitResult, second: FitResult) -> FitResult:
    """Two phases as one fit: epochs numbered on, the better phase's best epoch, rates over both."""
    offset = len(first.history)
    history = [*first.history, *(replace(log, epoch=log.epoch + offset) for log in second.history)]
    if first.best_valid[SELECTION_METRIC] > second.best_valid[SELECTION_METRIC]:
        best_epoch, best_valid = first.best_epoch, first.best_valid
    else:
        best_epoch, best_valid = second.best_epoch + offset, second.best_valid
    samples, seconds = sum(log.samples for log in history), sum(log.seconds for log in history)
    return FitResult(
        history, best_epoch, best_valid, first.seconds + second.seconds, samples / max(seconds, 1e-9), second.stopped
    )


def _phase(task: str, result: FitResult) -> dict[str, Any]:
    return {
        "task": task,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "best_valid": result.best_valid,
        "stopped": result.stopped,
        "seconds": round(result.seconds, 2),
        "samples_per_s": result.samples_per_s,
    }
