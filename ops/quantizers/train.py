"""The one fitting path for every tokenizer: seeded, deterministic on the CPU, reporting each epoch.

Same embeddings + config (seed included) give the same weights and codes: the model is built, k-means
initialised, shuffled and its dead codes restarted under one forked, seeded RNG, so training neither depends
on nor disturbs the caller's random state. After every epoch the whole catalogue is re-encoded (frozen
assignment, as the Semantic-ID table will be) to report per-level codebook usage and perplexity to the
callback, which is where the Dagster asset logs to MLflow.

A training-free tokenizer (no `train_schedule`: RQ-KMeans) takes the same path up to its k-means
initialisation, on every item, which is its whole fit; it skips the gradient epochs and reports its fitted
state once, as epoch 0, with the same figures.

Tokenizers train in float32 whatever `ops.device.placement` prefers for LLMs: nearest-code search in half
precision ties distinct codes and makes assignments unstable, and these models are small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ops.device import placement
from ops.diagnostics.usage import level_usage
from ops.quantizers.autoencoder import ENCODE_CHUNK, Tokenizer, TokenizerOutput
from ops.quantizers.config import TrainConfig
from ops.quantizers.kinds import TokenizerConfig, build_tokenizer, train_schedule

INIT_SAMPLE = 65536  # latents k-means initialisation sees at most (faiss itself keeps <= 256 per centroid)


@dataclass(frozen=True)
class EpochLog:
    epoch: int  # 1-based; 0 = the fitted state of a training-free tokenizer
    loss: float  # item-weighted mean over the epoch's batches, as trained (before the optimizer step)
    reconstruction_loss: float
    quantization_loss: float
    usage: list[float]  # per level: fraction of codes used by the catalogue at the end of the epoch
    perplexity: list[float]  # per level: exp(entropy) of those codes
    seconds: float  # wall time of the epoch's training steps


EpochCallback = Callable[[EpochLog], None]


@dataclass(frozen=True)
class TrainedTokenizer:
    model: Tokenizer  # in eval mode, on the training device
    codes: np.ndarray  # (n_items, n_codes) int64: frozen assignment of the training items
    history: list[EpochLog]
    seconds: float  # wall time of initialisation + all epochs


def train_tokenizer(
    config: TokenizerConfig,
    embeddings: np.ndarray,
    callback: EpochCallback | None = None,
    device: torch.device | None = None,
) -> TrainedTokenizer:
    """Fit the tokenizer ``config`` describes on ``embeddings`` (n_items, input_dim)."""
    device = device or placement().device
    schedule = train_schedule(config)
    x = torch.tensor(embeddings, dtype=torch.float32, device=device)  # (n, input_dim), a copy: inputs may be read-only
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if schedule is not None:
            torch.manual_seed(schedule.seed)
        model = build_tokenizer(config).to(device)
        if embeddings.ndim != 2 or embeddings.shape[1] != model.input_dim:
            raise ValueError(f"embeddings have shape {embeddings.shape}, config expects (n, {model.input_dim})")
        if schedule is None:
            history, codes = _fit(model, x, callback)
        else:
            history, codes = _train(model, x, schedule, callback)
    model.eval()
    return TrainedTokenizer(model, codes, history, time.perf_counter() - start)


def _fit(model: Tokenizer, x: torch.Tensor, callback: EpochCallback | None) -> tuple[list[EpochLog], np.ndarray]:
    """A training-free tokenizer: initialise on every item, then report the fitted state as epoch 0."""
    start = time.perf_counter()
    model.initialize(x)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        totals = sum(_loss_terms(model.run(chunk)) * len(chunk) for chunk in x.split(ENCODE_CHUNK))
    log, codes = _report(model, x, 0, totals / len(x), seconds)
    if callback is not None:
        callback(log)
    return [log], codes


def _train(
    model: Tokenizer, x: torch.Tensor, train: TrainConfig, callback: EpochCallback | None
) -> tuple[list[EpochLog], np.ndarray]:
    """k-means-initialise on a seeded sample of items, then ``train.epochs`` gradient epochs."""
    shuffle = torch.Generator().manual_seed(train.seed)
    model.initialize(x[torch.randperm(len(x), generator=shuffle)[:INIT_SAMPLE].to(x.device)])
    optimizer = adam(model, train.lr)
    history = []
    for epoch in range(1, train.epochs + 1):
        log, codes = _train_epoch(model, optimizer, x, train.batch_size, shuffle, epoch)
        history.append(log)
        if callback is not None:
            callback(log)
    return history, codes


def adam(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam over the trainable parameters (EMA codebooks are not), fused: one kernel per step instead of a
    handful of small ops per tensor, which on the CPU is most of the optimizer's time for models this small."""
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)


def _train_epoch(
    model: Tokenizer,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    batch_size: int,
    shuffle: torch.Generator,
    epoch: int,
) -> tuple[EpochLog, np.ndarray]:
    """One pass in shuffled batches, then a frozen encoding of every item for the usage figures."""
    model.train()
    start = time.perf_counter()
    totals = torch.zeros(3, dtype=torch.float64)  # summed loss, reconstruction, quantization (item-weighted)
    for batch in torch.randperm(len(x), generator=shuffle).split(batch_size):
        output = model.run(x[batch.to(x.device)])
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        totals += _loss_terms(output) * len(batch)
    return _report(model, x, epoch, totals / len(x), time.perf_counter() - start)


def _loss_terms(output: TokenizerOutput) -> torch.Tensor:
    """(3,) float64 on the CPU: loss, reconstruction loss, quantization loss."""
    return torch.stack([output.loss, output.reconstruction_loss, output.quantization_loss]).detach().cpu().double()


def _report(
    model: Tokenizer, x: torch.Tensor, epoch: int, losses: torch.Tensor, seconds: float
) -> tuple[EpochLog, np.ndarray]:
    """The epoch's log: ``losses`` (3,) as given, usage and perplexity of a frozen encoding of every item."""
    codes = model.encode_codes(x).cpu().numpy()  # (n, n_codes)
    usage = level_usage(codes, model.codebook_size)
    loss, reconstruction, quantization = losses.tolist()
    log = EpochLog(epoch, loss, reconstruction, quantization, usage["usage"], usage["perplexity"], seconds)
    return log, codes
