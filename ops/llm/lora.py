"""A causal LM with LoRA adapters, rebuilt from one checkpoint file.

`build` loads a ``transformers`` causal LM in float32 (training keeps float32 weights; bf16 is the autocast's
business, see `trainer`), optionally adds new tokens and makes the attention bidirectional (LLM2Vec), folds
earlier adapters into the base weights, and wraps it with ``peft`` LoRA. `save_checkpoint` writes the adapter
tensors, the `ModelSpec` and every folded adapter into one ``torch.load(weights_only=True)`` file, so
`load_checkpoint` rebuilds the exact model from that file and the base checkpoint alone.

New tokens (LAMIA's palette tokens, the recommender's Semantic-ID tokens) train through peft's
``trainable_token_indices``: only their rows of the input embedding get a trainable delta, the base matrix
stays untouched, and with tied input/output embeddings (SmolLM2, OPT) the output head uses the same rows. For an
untied head the head's rows are made trainable too. That costs ``n_new x dim`` parameters, where
``modules_to_save=["embed_tokens"]`` would copy and train the whole ``vocab x dim`` matrix (28M for SmolLM2).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ops.embeddings.attention import make_bidirectional
from ops.embeddings.config import SMOLLM2
from ops.embeddings.models import resolve_model
from ops.quantizers.config import config_from_dict, config_to_dict
from ops.tables import write_atomic

FORMAT = "semid-lora-1"  # checkpoint layout tag, checked on load
Prepare = Callable[[PreTrainedTokenizerBase, PreTrainedModel], None]  # in-place set-up of a base model before LoRA


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 16  # LLM2Vec: 16; LAMIA: 128
    alpha: int = 32  # LoRA scale = alpha / rank; LLM2Vec sets alpha = 2 x rank
    dropout: float = 0.05  # dropout on the LoRA branch's input (LLM2Vec: 0.05)
    target_modules: tuple[str, ...] = ()  # module name suffixes; () = every linear layer but the output head

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))  # lists from checkpoints
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"invalid LoRA settings {self}")

    @classmethod
    def test(cls) -> LoraSettings:
        return cls(rank=4, alpha=8, dropout=0.0)


@dataclass(frozen=True)
class ModelSpec:
    model: str = SMOLLM2  # local-cache name, model directory or hub id (LAMIA's paper: facebook/opt-350m)
    new_tokens: tuple[str, ...] = ()  # added as special tokens (never split); their embedding rows train
    bidirectional: bool = False  # LLM2Vec: every token also attends to later ones
    attention_dropout: float | None = None  # None = the checkpoint's own; SimCSE raises it for its two views
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "new_tokens", tuple(self.new_tokens))
        if len(set(self.new_tokens)) != len(self.new_tokens):
            raise ValueError(f"new tokens repeat: {self.new_tokens}")


@dataclass
class LoraLM:
    """A tokenizer and its LoRA-wrapped causal LM, with what rebuilds them."""

    tokenizer: PreTrainedTokenizerBase
    model: PeftModel
    spec: ModelSpec
    merged: tuple[dict[str, Any], ...]  # adapter payloads folded into the base weights first, oldest first

    @property
    def new_token_ids(self) -> list[int]:
        return self.tokenizer.convert_tokens_to_ids(list(self.spec.new_tokens))


class DecoderParts(NamedTuple):
    """The three pieces tasks call separately: ids -> vectors, vectors -> final states, states -> logits. Calling
    the head only on the positions a loss reads saves the (tokens x vocab) projection everywhere else."""

    embed: nn.Module  # (batch, seq) ids -> (batch, seq, dim) input vectors
    body: nn.Module  # transformers base model: inputs_embeds or input_ids -> .last_hidden_state (batch, seq, dim)
    head: nn.Module  # (..., dim) -> (..., vocab) logits


def decoder_parts(model: PreTrainedModel | PeftModel) -> DecoderParts:
    """Works on the peft wrapper and on a plain model alike; the LoRA layers live inside ``body``."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    return DecoderParts(base.get_input_embeddings(), base.base_model, base.get_output_embeddings())


def load_base(spec: ModelSpec) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The float32 causal LM and tokenizer ``spec`` names, with its new tokens and attention set up, no LoRA."""
    source = resolve_model(spec.model)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:  # LLaMA tokenizers have none; pads are masked, any id will do
        tokenizer.pad_token = tokenizer.eos_token
    overrides = {} if spec.attention_dropout is None else {"attention_dropout": spec.attention_dropout}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **overrides)
    model.config.use_cache = False  # training and one-pass encoding: a KV cache only costs memory
    if spec.new_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(spec.new_tokens)})
        rows = model.get_input_embeddings().num_embeddings
        if len(tokenizer) > rows:  # OPT has spare rows past its vocabulary: never shrink
            model.resize_token_embeddings(len(tokenizer))  # new rows ~ N(mean, cov) of the old ones
    if spec.bidirectional:
        make_bidirectional(model.base_model)
    return tokenizer, model


def apply_lora(model: PreTrainedModel, settings: LoraSettings, token_ids: Sequence[int]) -> PeftModel:
    """Wrap ``model`` with LoRA; ``token_ids`` get trainable embedding rows (and head rows when untied)."""
    trainable = {}
    if token_ids:
        trainable[_module_name(model, model.get_input_embeddings())] = list(token_ids)
        head = model.get_output_embeddings()
        if head is not None and head.weight is not model.get_input_embeddings().weight:
            trainable[_module_name(model, head)] = list(token_ids)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules) or "all-linear",
        trainable_token_indices=trainable or None,
        bias="none",
    )
    return get_peft_model(model, config)


def fold(model: PreTrainedModel, payloads: Sequence[dict[str, Any]], token_ids: Sequence[int]) -> PreTrainedModel:
    """Merge saved adapters into the base weights, oldest first (LLM2Vec: MNTP before SimCSE)."""
    for payload in payloads:
        settings = config_from_dict(ModelSpec, payload["spec"]).lora
        wrapped = apply_lora(model, settings, token_ids)
        set_peft_model_state_dict(wrapped, payload["state_dict"])
        model = wrapped.merge_and_unload()
    return model


def build(
    spec: ModelSpec, merged: Sequence[dict[str, Any]] = (), seed: int = 0, prepare: Prepare | None = None
) -> LoraLM:
    """The model to train: base + folded ``merged`` adapters + a fresh LoRA (B = 0: outputs equal the base's).
    Seeded: LoRA's A matrices and new token rows are random, and ``seed`` makes them reproducible. ``prepare``
    sees the tokenizer and the base model before LoRA wraps it (the recommender initialises its new rows there)."""
    with _seeded(seed):
        tokenizer, base = load_base(spec)
        token_ids = tokenizer.convert_tokens_to_ids(list(spec.new_tokens))
        base = fold(base, merged, token_ids)
        if prepare is not None:
            prepare(tokenizer, base)
        model = apply_lora(base, spec.lora, token_ids)
    return LoraLM(tokenizer, model, spec, tuple(merged))


def adapter_payload(lm: LoraLM, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plain tensors and data only, so ``torch.load(weights_only=True)`` reads it back."""
    state = get_peft_model_state_dict(lm.model, save_embedding_layers=False)  # new rows live in the token delta
    return {
        "format": FORMAT,
        "spec": config_to_dict(lm.spec),
        "state_dict": {name: tensor.detach().cpu().clone() for name, tensor in state.items()},
        "merged": list(lm.merged),
        "meta": dict(meta or {}),
    }


def save_checkpoint(lm: LoraLM, path: Path, meta: dict[str, Any] | None = None) -> None:
    """Adapter weights, spec and folded adapters in one file, written atomically."""
    payload = adapter_payload(lm, meta)
    write_atomic(Path(path), lambda temporary: torch.save(payload, temporary))


def read_checkpoint(path: Path) -> dict[str, Any]:
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} checkpoint (format {payload.get('format')!r})")
    return payload


def load_checkpoint(path: Path) -> LoraLM:
    """Rebuild the trained model of a checkpoint (train mode off): same outputs as when it was saved."""
    payload = read_checkpoint(path)
    lm = build(config_from_dict(ModelSpec, payload["spec"]), payload["merged"])
    set_peft_model_state_dict(lm.model, payload["state_dict"])
    lm.model.eval()
    return lm


def export_merged(payload: dict[str, Any], directory: Path) -> Path:
    """A plain ``transformers`` model directory with every adapter of ``payload`` merged in, loadable by
    ``from_pretrained`` (the embedder's path). Attention dropout is the checkpoint's own again."""
    spec = dataclasses.replace(config_from_dict(ModelSpec, payload["spec"]), attention_dropout=None)
    tokenizer, base = load_base(spec)
    token_ids = tokenizer.convert_tokens_to_ids(list(spec.new_tokens))
    merged = fold(base, [*payload["merged"], payload], token_ids)
    merged.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def frozen_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the parameters no optimizer may touch (everything not trainable): tests compare them bitwise."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}


def _module_name(model: nn.Module, module: nn.Module) -> str:
    """The last name component of ``module`` inside ``model`` (what peft's target options match)."""
    for name, candidate in model.named_modules():
        if candidate is module:
            return name.rsplit(".", 1)[-1]
    raise ValueError(f"{type(module).__name__} is not a submodule of {type(model).__name__}")


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Draw from ``seed`` without disturbing the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
