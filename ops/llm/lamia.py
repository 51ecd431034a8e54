"""LAMIA item palettes (arXiv 2409.07276, sections 4.2.1-4.2.2): a decoder LLM with LoRA compresses an item's
content into L parallel embeddings, trained to regenerate the item's attributes from them alone.

Input blocks of one item, in order (the paper's Figure 3):

- content: the first r attributes as text (``title: ...; abstract: ...``), causal inside;
- LaP: L learnable palette tokens ``<LaP1>..<LaPL>`` (new embedding rows), which see the content and, causally,
  each other; their final states are the **item palette**;
- LdP: L placeholder tokens ``<LdP1>..<LdPL>``, causal inside, seeing no other block;
- task blocks: a task token (the attribute's name, ``category:``) and the answer, causal inside, seeing only the
  LdP block and themselves. Every attribute is one task (reconstruct one in the content, or predict an unseen
  one); an item's tasks share one sequence and never see one another, so one palette serves all m of them.

`hierarchical_mask` is that rule table over the whole sequence, as a 4-D mask passed to the model. Dual forward:
pass 1 reads content + LaP and yields the palette; pass 2 reads LdP + tasks with the LdP *inputs* replaced by
the palette, so gradients of the task loss reach the palette and through it the content. The mask gives no
pass-2 row any pass-1 column, so each pass runs on its own columns only: the exact dual forward of the full
sequence without computing the content twice (a test runs the full sequence and checks equality). Positions
restart at 0 for the LdP block, and each task block continues after it: the task reads the palette the same
way whatever the content's length (under RoPE only relative positions matter, so this equals continuing the
count; with OPT's learned positions it keeps the content length from leaking past the palette).

Loss: next-token cross-entropy on the answers (+ EOS) + gamma (L_intra + L_inter), both squared hinges on cosine
similarity: between the L aspects of one item (above alpha_intra = 0.1) and between one aspect of different
items of the micro-batch (above alpha_inter = 0.25). The paper writes sums; we take means over the pairs, so
gamma = 0.1 weighs the same at any batch size (the paper's sum over B^2 L pairs at B = 128 would swamp the
generation loss: a constant factor gamma cannot have been tuned against).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from ops.device import Placement
from ops.embeddings.batching import length_sorted_batches, pad_batch
from ops.embeddings.config import SMOLLM2
from ops.embeddings.templates import AMAZON, HM, MIND, SEPARATOR, TextTemplate, field_values
from ops.llm.language_modeling import IGNORE, shifted_cross_entropy
from ops.llm.lora import LoraSettings, ModelSpec, decoder_parts
from ops.llm.trainer import Batch, LossOutput, TrainerConfig


class Block(IntEnum):
    PAD = 0
    CONTENT = 1
    PALETTE = 2  # LaP
    PLACEHOLDER = 3  # LdP
    TASK = 4


def palette_tokens(size: int) -> tuple[str, ...]:
    return tuple(f"<LaP{i}>" for i in range(1, size + 1))


def placeholder_tokens(size: int) -> tuple[str, ...]:
    return tuple(f"<LdP{i}>" for i in range(1, size + 1))


@dataclass(frozen=True)
class LamiaConfig:
    model: str = SMOLLM2  # the decoder; the paper's is OPT-350M (any causal LM directory or hub id works)
    palette_size: int = 4  # L palette embeddings = codes per item (paper: 4)
    content_fields: tuple[str, ...] = ("title", "abstract")  # the r content attributes (paper, MIND: title, abstract)
    task_fields: tuple[str, ...] = ("title", "abstract", "category", "subcategory")  # the m tasks (paper, MIND)
    alpha_intra: float = 0.1  # cosine margin between aspects of one item (paper)
    alpha_inter: float = 0.25  # cosine margin between one aspect of two items (paper)
    gamma: float = 0.1  # weight of the contrastive losses (paper); 0 = the paper's Table 4 ablation
    max_content_tokens: int = 128  # content block length cap (MIND title + abstract: ~60 SmolLM2 tokens median)
    max_answer_tokens: int = 32  # answer length cap per task (long abstracts are cut; EOS is kept)
    lora: LoraSettings = field(default_factory=lambda: LoraSettings(rank=128, alpha=256, dropout=0.05))  # paper: 128
    training: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(lr=1e-4, batch_size=128, micro_batch_size=16)
    )  # paper: Adam 1e-4, batch 128; the inter-palette negatives are each micro-batch's 15 other items
    seed: int = 0  # LoRA and palette-token initialisation

    def __post_init__(self) -> None:
        for name in ("content_fields", "task_fields"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            TextTemplate(name, getattr(self, name))  # validates the field names
        if self.palette_size < 1 or self.gamma < 0 or self.max_content_tokens < 1 or self.max_answer_tokens < 1:
            raise ValueError(f"invalid LAMIA config {self}")

    @property
    def spec(self) -> ModelSpec:
        """The model: palette and placeholder tokens are new tokens (only LaP rows ever get a gradient)."""
        tokens = palette_tokens(self.palette_size) + placeholder_tokens(self.palette_size)
        return ModelSpec(self.model, new_tokens=tokens, lora=self.lora)

    @classmethod
    def amazon(cls, **changes: Any) -> LamiaConfig:
        """Amazon reviews: content = title + brand (r = 2); tasks reconstruct both and predict the unseen
        category breadcrumb (m = 3). The content is the Amazon template minus the categories, so the palette
        must learn what predicts them, as MIND's palette must for its categories."""
        return cls(content_fields=("title", "brand"), task_fields=("title", "brand", "categories"), **changes)

    @classmethod
    def hm(cls, **changes: Any) -> LamiaConfig:
        """H&M articles: as the paper, every attribute is content and each one a task (r = m); semid's H&M
        template has five of the paper's seven."""
        return cls(content_fields=HM.fields, task_fields=HM.fields, **changes)

    @classmethod
    def for_template(cls, name: str, **changes: Any) -> LamiaConfig:
        """The preset of a data set's text-template family (``mind``, ``amazon``, ``hm``)."""
        presets = {MIND.name: cls, AMAZON.name: cls.amazon, HM.name: cls.hm}
        if name not in presets:
            raise ValueError(f"no LAMIA preset for template {name!r}; known: {sorted(presets)}")
        return presets[name](**changes)

    @classmethod
    def test(cls, model: str) -> LamiaConfig:
        training = TrainerConfig(lr=1e-2, batch_size=4, micro_batch_size=2, epochs=2)
        return cls(model, 2, max_content_tokens=16, max_answer_tokens=8, lora=LoraSettings.test(), training=training)


@dataclass(frozen=True)
class PaletteExample:
    content: tuple[int, ...]  # content block token ids
    tasks: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]  # per task: (task-token ids, answer ids + EOS)


def item_examples(
    items: pl.DataFrame, tokenizer: PreTrainedTokenizerBase, config: LamiaConfig, empty_content: bool = False
) -> tuple[list[str], list[PaletteExample]]:
    """Items with content -> their examples (item ids in table order); a task whose attribute is empty is left out.

    ``empty_content`` also keeps items with text but none of the content fields (7 of Beauty's 12,101 have only
    categories), with an empty content block: palette inference passes it, so every item with text has a palette
    and codes, as with every other embedder; theirs is the model's prior, one palette shared by all such items.
    Training leaves them out: there is nothing to reconstruct their attributes from."""
    content_template = TextTemplate("lamia-content", config.content_fields)
    task_template = TextTemplate("lamia-tasks", config.task_fields)
    ids, contents, answers = [], [], []
    for row in items.iter_rows(named=True):
        values = field_values(row, content_template) if row["has_text"] else []
        content = SEPARATOR.join(f"{name}: {value}" for name, value in zip(config.content_fields, values) if value)
        if content or (empty_content and row["has_text"]):
            ids.append(row["item_id"])
            contents.append(content)
            answers.append(field_values(row, task_template))
    if not ids:
        return [], []
    content_ids = tokenizer(contents, truncation=True, max_length=config.max_content_tokens)["input_ids"]
    prompts = tokenizer([f"{name}:" for name in config.task_fields], add_special_tokens=False)["input_ids"]
    flat = tokenizer([f" {value}" for row in answers for value in row], add_special_tokens=False)["input_ids"]
    m, keep, eos = len(config.task_fields), config.max_answer_tokens - 1, tokenizer.eos_token_id
    examples = [
        PaletteExample(
            tuple(content),
            tuple((tuple(prompts[k]), (*flat[i * m + k][:keep], eos)) for k, value in enumerate(row) if value),
        )
        for i, (content, row) in enumerate(zip(content_ids, answers, strict=True))
    ]
    return ids, examples


def item_layout(content_len: int, palette_size: int, task_lens: Sequence[int]) -> tuple[list[int], ...]:
    """(block kind, block index, position id) of every position of one item's whole sequence: content, LaP, LdP,
    then each task block. Positions count from 0 over content + LaP, restart at 0 for LdP, and every task block
    continues after the LdP block (each task is laid out as if it were alone)."""
    n_first, tasks = content_len + palette_size, range(len(task_lens))
    kinds = [Block.CONTENT] * content_len + [Block.PALETTE] * palette_size + [Block.PLACEHOLDER] * palette_size
    kinds += [Block.TASK for length in task_lens for _ in range(length)]
    blocks = [0] * (n_first + palette_size) + [1 + k for k in tasks for _ in range(task_lens[k])]
    positions = [*range(n_first), *range(palette_size)]
    positions += [p for length in task_lens for p in range(palette_size, palette_size + length)]
    return [int(kind) for kind in kinds], blocks, positions


def hierarchical_mask(kinds: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """Who may attend to whom: (batch, seq) block kinds and indices -> (batch, seq, seq) bool, [query, key].

    Causal inside each block; LaP also sees all of the content, a task block all of LdP; nothing else crosses
    blocks. Padding is seen by nobody, and a padding row sees only itself (a fully masked row would make the
    attention softmax NaN).
    """
    seq = kinds.shape[1]
    order = torch.arange(seq, device=kinds.device)
    causal = order[:, None] >= order[None, :]  # (seq, seq)
    query, key = kinds[:, :, None], kinds[:, None, :]  # (batch, seq, 1), (batch, 1, seq)
    same_block = (query == key) & (blocks[:, :, None] == blocks[:, None, :])  # (batch, seq, seq)
    allowed = (same_block & causal) | ((query == Block.PALETTE) & (key == Block.CONTENT))
    allowed |= (query == Block.TASK) & (key == Block.PLACEHOLDER)
    real = kinds != Block.PAD  # (batch, seq)
    allowed &= real[:, :, None] & real[:, None, :]
    return allowed | (torch.eye(seq, dtype=torch.bool, device=kinds.device) & ~real[:, :, None])


def additive_mask(allowed: torch.Tensor) -> torch.Tensor:
    """(batch, seq, seq) bool -> the (batch, 1, seq, seq) float mask transformers adds to attention scores."""
    blocked = torch.finfo(torch.float32).min  # -inf once autocast casts it to bf16: fine, no row is fully blocked
    return torch.zeros(allowed.shape, device=allowed.device).masked_fill(~allowed, blocked)[:, None]


class PaletteCollate:
    """Examples -> the two passes' tensors. Pass 1 (content + LaP) is left-padded so every row's palette is its
    last L columns; pass 2 (LdP + tasks) is right-padded and carries the answer labels."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, palette_size: int) -> None:
        self.palette_size = palette_size
        self.palette_ids = tokenizer.convert_tokens_to_ids(list(palette_tokens(palette_size)))
        self.placeholder_ids = tokenizer.convert_tokens_to_ids(list(placeholder_tokens(palette_size)))
        self.pad_id = tokenizer.pad_token_id

    def content(self, examples: Sequence[PaletteExample]) -> Batch:
        """Pass 1 only: what palette inference needs."""
        return self._pack("content", [self._split(example)[0] for example in examples], "left")

    def __call__(self, examples: Sequence[PaletteExample]) -> Batch:
        first, second, labels = zip(*(self._split(example) for example in examples), strict=True)
        return {
            **self._pack("content", list(first), "left"),
            **self._pack("task", list(second), "right"),
            "labels": pad_batch(labels, IGNORE, "right")[0],  # (batch, seq) of pass 2
        }

    def _split(self, example: PaletteExample) -> tuple[list[list[int]], list[list[int]], list[int]]:
        """The item's whole sequence as [ids, kinds, blocks, positions], cut into pass 1 (content + LaP) and
        pass 2 (LdP + tasks), and pass 2's labels."""
        ids = [*example.content, *self.palette_ids, *self.placeholder_ids]
        labels = [IGNORE] * len(ids)
        for prompt, answer in example.tasks:
            ids += [*prompt, *answer]
            labels += [IGNORE] * len(prompt) + list(answer)
        task_lens = [len(prompt) + len(answer) for prompt, answer in example.tasks]
        row = [ids, *item_layout(len(example.content), self.palette_size, task_lens)]
        cut = len(example.content) + self.palette_size
        return [part[:cut] for part in row], [part[cut:] for part in row], labels[cut:]

    def _pack(self, prefix: str, rows: list[list[list[int]]], side: str) -> Batch:
        ids = pad_batch([row[0] for row in rows], self.pad_id, side)[0]  # (batch, seq)
        kinds = pad_batch([row[1] for row in rows], Block.PAD, side)[0]
        blocks = pad_batch([row[2] for row in rows], 0, side)[0]
        positions = pad_batch([row[3] for row in rows], 0, side)[0]
        return {
            f"{prefix}_ids": ids,
            f"{prefix}_positions": positions,
            f"{prefix}_allowed": hierarchical_mask(kinds, blocks),
        }


def palettes(model: nn.Module, batch: Batch, palette_size: int) -> torch.Tensor:
    """Pass 1: (batch, L, dim) final states of the LaP tokens, the item palettes."""
    embed, body, _ = decoder_parts(model)
    states = body(
        inputs_embeds=embed(batch["content_ids"]),
        attention_mask=additive_mask(batch["content_allowed"]),
        position_ids=batch["content_positions"],
    ).last_hidden_state  # (batch, seq, dim)
    return states[:, -palette_size:]  # left padding: every row ends with its LaP block


def task_states(model: nn.Module, batch: Batch, palette: torch.Tensor) -> torch.Tensor:
    """Pass 2: (batch, seq, dim) final states of LdP + tasks with the LdP inputs replaced by ``palette``."""
    embed, body, _ = decoder_parts(model)
    inputs = embed(batch["task_ids"])  # (batch, seq, dim)
    inputs = torch.cat([palette.to(inputs.dtype), inputs[:, palette.shape[1] :]], dim=1)
    return body(
        inputs_embeds=inputs,
        attention_mask=additive_mask(batch["task_allowed"]),
        position_ids=batch["task_positions"],
    ).last_hidden_state


def intra_palette_loss(palette: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over items and ordered aspect pairs j != k of max(0, cos(B_ij, B_ik) - margin)^2; palette (B, L, D)."""
    unit = F.normalize(palette.float(), dim=-1)
    similarity = unit @ unit.transpose(1, 2)  # (B, L, L)
    off_diagonal = ~torch.eye(palette.shape[1], dtype=torch.bool, device=palette.device)
    return F.relu(similarity[:, off_diagonal] - margin).pow(2).mean()


def inter_palette_loss(palette: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over aspects and ordered item pairs i != k of max(0, cos(B_ij, B_kj) - margin)^2; 0 for one item."""
    if palette.shape[0] < 2:
        return palette.sum() * 0.0
    unit = F.normalize(palette.float(), dim=-1).transpose(0, 1)  # (L, B, D)
    similarity = unit @ unit.transpose(1, 2)  # (L, B, B)
    off_diagonal = ~torch.eye(palette.shape[0], dtype=torch.bool, device=palette.device)
    return F.relu(similarity[:, off_diagonal] - margin).pow(2).mean()


def lamia_loss(config: LamiaConfig) -> Callable[[nn.Module, Batch], LossOutput]:
    """L_gen + gamma (L_intra + L_inter) for `trainer.train`; weighted by items (the contrastive terms are
    per item; the generation term is each micro-batch's mean over its answer tokens)."""

    def loss(model: nn.Module, batch: Batch) -> LossOutput:
        palette = palettes(model, batch, config.palette_size)  # (B, L, D)
        states = task_states(model, batch, palette)  # (B, seq, D)
        generation, _ = shifted_cross_entropy(decoder_parts(model).head, states, batch["labels"])
        intra = intra_palette_loss(palette, config.alpha_intra)
        inter = inter_palette_loss(palette, config.alpha_inter)
        total = generation + config.gamma * (intra + inter)
        parts = {"generation": generation.item(), "intra": intra.item(), "inter": inter.item()}
        return LossOutput(total, float(palette.shape[0]), parts)

    return loss


@torch.inference_mode()
def palette_embeddings(
    model: nn.Module,
    collate: PaletteCollate,
    examples: Sequence[PaletteExample],
    batch_size: int,
    where: Placement,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """float32 (n, L, dim) palettes of ``examples`` in order: pass 1 only, length-sorted batches, eval mode,
    under the training's autocast (bf16 where the hardware multiplies it natively: 2.5x the items/s measured on
    an AVX512-BF16 CPU, cosine >= 0.999 to float32 palettes)."""
    model.eval().to(where.device)
    out = np.zeros((len(examples), collate.palette_size, 0), dtype=np.float32)  # width set by the first batch
    done = 0
    with tqdm(total=len(examples), desc="palettes", unit="item", disable=None) as bar:
        for indices in length_sorted_batches([len(e.content) for e in examples], batch_size):
            batch = {k: v.to(where.device) for k, v in collate.content([examples[i] for i in indices]).items()}
            with where.autocast():
                palette = palettes(model, batch, collate.palette_size).float().cpu().numpy()  # (batch, L, D)
            if out.shape[2] == 0:
                out = np.empty((len(examples), *palette.shape[1:]), dtype=np.float32)
            out[indices] = palette
            done += len(indices)
            bar.update(len(indices))
            if progress is not None:
                progress(done, len(examples))
    return out
