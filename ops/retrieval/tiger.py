"""TIGER end to end on numpy sequences: the training task (one example per prefix: the encoder reads the history,
the decoder is taught the next item's tokens), and top-K recommendation by trie-constrained beam search.

Batches come from `SIDData`'s `Examples` views in length-sorted pools, so padding stays small.
"""

from __future__ import annotations

import torch
from transformers import T5ForConditionalGeneration

from ops.device import placement
from ops.retrieval.beam_search import beam_search
from ops.retrieval.cpu_training import prepare_for_cpu_training
from ops.retrieval.model import TIGERConfig, build_tiger
from ops.retrieval.sequences import Examples, length_batches
from ops.retrieval.sid_data import Evaluation, SIDData, evaluate_search
from ops.retrieval.train import EpochCallback, FitResult, Task, fit, seeded

# users per beam-search batch: x beams rows whose copied cross-attention cache stays in CPU cache (2x faster than 256)
DECODE_BATCH = 32
VALID_BEAMS = 20  # beams of the per-epoch validation (Recall@10 needs at least 10)


def training_task(
    model: T5ForConditionalGeneration, data: SIDData, train: Examples, valid: Examples, batch_size: int
) -> Task[Examples]:
    """Teacher-forced cross-entropy on the target's tokens; validation = beam-search Recall/NDCG."""
    device = next(model.parameters()).device

    def loss(batch: Examples) -> tuple[torch.Tensor, int]:
        input_ids, mask = data.inputs(batch)
        labels = torch.from_numpy(data.tokens[batch.target]).to(device)  # (b, levels)
        output = model(
            input_ids=torch.from_numpy(input_ids).to(device),
            attention_mask=torch.from_numpy(mask).to(device),
            labels=labels,
            use_cache=False,  # teacher forcing needs no key/value cache; building one costs a concatenation per layer
        )
        return output.loss, len(batch)

    return Task(
        batches=lambda rng: (train.subset(rows) for rows in length_batches(train.length, batch_size, rng)),
        loss=loss,
        validate=lambda: evaluate(model, data, valid, beams=VALID_BEAMS).metrics,
    )


def train_tiger(
    config: TIGERConfig, data: SIDData, callback: EpochCallback | None = None
) -> tuple[T5ForConditionalGeneration, FitResult]:
    """Build TIGER for ``data``'s vocabulary and fit it; validation on a seeded sample of validation users."""
    device = placement().device
    model = seeded(lambda: build_tiger(config, data.vocabulary), config.train.seed).to(device)
    if device.type == "cpu":  # GPUs fuse dropout, attention and casts already (see ops/retrieval/cpu_training.py)
        prepare_for_cpu_training(model)
    task = training_task(model, data, data.prefixes(), data.validation_sample(config.train), config.train.batch_size)
    return model, fit(model, task, config.train, callback)


def evaluate(model: T5ForConditionalGeneration, data: SIDData, examples: Examples, beams: int) -> Evaluation:
    """Top-``beams`` items per example by TIGER's trie-constrained beam search, scored against the targets."""
    return evaluate_search(model, data, examples, beams, beam_search, DECODE_BATCH)
