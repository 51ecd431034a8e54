"""FuxiCTR's DCNv2 and DeepFM as the baseline for ``bench/ctr.py``, trained with FuxiCTR's own loop.

The ``fuxictr==2.3.10`` wheel ships ``BaseModel``, the data pipeline and the layers, but not the model zoo, so
the two backbones are assembled here from ``fuxictr.pytorch.layers`` exactly as reczoo/FuxiCTR's
``model_zoo/DCNv2/src/DCNv2.py`` and ``model_zoo/DeepFM/DeepFM_torch/src/DeepFM.py`` define them:

* DCNv2 (``model_structure="parallel"``, the zoo's default config, full-rank ``CrossNetV2``):
  ``FeatureEmbedding`` (flattened, F*d) -> ``CrossNetV2(F*d, num_cross_layers)`` in parallel with
  ``MLP_Block(F*d, hidden_units, ReLU)``; concatenation -> ``nn.Linear(F*d + hidden_units[-1], 1)`` -> sigmoid.
* DeepFM: ``FeatureEmbedding`` (F, d) -> ``FactorizationMachine`` (pairwise inner-product sum + first-order
  ``LogisticRegression`` with its own 1-d embeddings and a bias) plus ``MLP_Block(F*d, hidden_units, ReLU,
  output_dim=1)`` -> sum -> sigmoid.

Both: no dropout, no batch norm, no regularisers (the zoo's ``*_default`` configs); ``BaseModel`` defaults
otherwise: embeddings ~ N(0, 1e-4), Linear weights Xavier-normal with zero bias, Adam, binary cross-entropy,
gradient-norm clipping at 10, validation AUC monitored once per epoch (min_delta 1e-6), best weights saved
and restored, learning rate x0.1 on every non-improving epoch (``reduce_lr_on_plateau``).

Data goes through FuxiCTR's own pipeline: a ``FeatureMap`` loaded from a ``feature_map.json`` written for the
already integer-encoded categorical columns (``vocab_size`` as given), ``.npz`` files, and its in-memory
``NpzDataLoader`` (the fastest of its loaders here: its Ray-backed ``ParquetDataLoader`` iterates no faster on 2
cores and costs seconds of Ray start-up and extra processes). ``samples_per_second`` counts the training rows
of all epochs over the training time with validation (and checkpointing, done inside it) taken out.

    PYTHONPATH=. .venv/bin/python bench/fuxictr_baseline.py            # synthetic smoke run of both models

Timing caveat: with torch using 2 OpenMP threads on 2 cores that other processes also load, OpenMP's spinning
barriers make training 5-10x slower (measured 11k vs 57k rows/s for DCNv2 here). Set ``OMP_WAIT_POLICY=PASSIVE``
in the environment before torch is imported (the smoke mode does) -- for semid's models too, so the ratio is fair.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

MODELS = ("DCNv2", "DeepFM")
LABEL = "label"
DATASET_ID = "semid_bench"


@dataclass(frozen=True)
class FuxiRun:
    model: str
    test_auc: float
    test_logloss: float
    valid_auc: float  # best validation AUC (the restored epoch)
    epochs: int  # epochs trained, including the ones early stopping rejected
    best_epoch: int | None  # 1-based epoch whose weights were restored
    train_seconds: float  # training steps + data loading, validation and checkpointing excluded
    samples_per_second: float  # training rows processed (all epochs) / train_seconds


def _model_classes() -> dict[str, type]:
    """DCNv2 and DeepFM as FuxiCTR's model zoo writes them (imports deferred: fuxictr pulls in a lot)."""
    import torch
    from fuxictr.pytorch.layers import CrossNetMix, CrossNetV2, FactorizationMachine, FeatureEmbedding, MLP_Block
    from fuxictr.pytorch.models import BaseModel
    from torch import nn

    class _Timed(BaseModel):
        """BaseModel with bookkeeping only: rows trained, seconds spent validating, the best epoch."""

        def _reset_counters(self) -> None:
            self.rows_trained = 0
            self.eval_seconds = 0.0  # validation, checkpoint saving and restoring
            self.best_epoch: int | None = None

        def train_step(self, batch_data):
            self.rows_trained += int(batch_data[self.feature_map.labels[0]].shape[0])
            return super().train_step(batch_data)

        def eval_step(self):
            start = time.perf_counter()
            super().eval_step()
            self.eval_seconds += time.perf_counter() - start

        def load_weights(self, checkpoint):  # fit() ends by restoring the best checkpoint: not training either
            start = time.perf_counter()
            super().load_weights(checkpoint)
            self.eval_seconds += time.perf_counter() - start

        def checkpoint_and_earlystop(self, logs, min_delta=1e-6):
            super().checkpoint_and_earlystop(logs, min_delta)
            if self._stopping_steps == 0:  # improved: this epoch's weights were saved
                self.best_epoch = self._epoch_index + 1

    class DCNv2(_Timed):
        def __init__(self, feature_map, model_id="DCNv2", gpu=-1, model_structure="parallel",
                     use_low_rank_mixture=False, low_rank=32, num_experts=4, learning_rate=1e-3, embedding_dim=10,
                     stacked_dnn_hidden_units=[], parallel_dnn_hidden_units=[], dnn_activations="ReLU",
                     num_cross_layers=3, net_dropout=0, batch_norm=False, embedding_regularizer=None,
                     net_regularizer=None, **kwargs):  # fmt: skip
            super().__init__(feature_map, model_id=model_id, gpu=gpu, embedding_regularizer=embedding_regularizer,
                             net_regularizer=net_regularizer, **kwargs)  # fmt: skip
            self._reset_counters()
            self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
            input_dim = feature_map.sum_emb_out_dim()
            if use_low_rank_mixture:
                self.crossnet = CrossNetMix(input_dim, num_cross_layers, low_rank=low_rank, num_experts=num_experts)
            else:
                self.crossnet = CrossNetV2(input_dim, num_cross_layers)
            self.model_structure = model_structure
            assert model_structure in ["crossnet_only", "stacked", "parallel", "stacked_parallel"], model_structure
            if model_structure in ["stacked", "stacked_parallel"]:
                self.stacked_dnn = MLP_Block(input_dim=input_dim, output_dim=None,
                                             hidden_units=stacked_dnn_hidden_units,
                                             hidden_activations=dnn_activations, output_activation=None,
                                             dropout_rates=net_dropout, batch_norm=batch_norm)  # fmt: skip
                final_dim = stacked_dnn_hidden_units[-1]
            if model_structure in ["parallel", "stacked_parallel"]:
                self.parallel_dnn = MLP_Block(input_dim=input_dim, output_dim=None,
                                              hidden_units=parallel_dnn_hidden_units,
                                              hidden_activations=dnn_activations, output_activation=None,
                                              dropout_rates=net_dropout, batch_norm=batch_norm)  # fmt: skip
                final_dim = input_dim + parallel_dnn_hidden_units[-1]
            if model_structure == "stacked_parallel":
                final_dim = stacked_dnn_hidden_units[-1] + parallel_dnn_hidden_units[-1]
            if model_structure == "crossnet_only":
                final_dim = input_dim
            self.fc = nn.Linear(final_dim, 1)
            self.compile(kwargs["optimizer"], kwargs["loss"], learning_rate)
            self.reset_parameters()
            self.model_to_device()

        def forward(self, inputs):
            X = self.get_inputs(inputs)
            feature_emb = self.embedding_layer(X, flatten_emb=True)
            cross_out = self.crossnet(feature_emb)
            if self.model_structure == "crossnet_only":
                final_out = cross_out
            elif self.model_structure == "stacked":
                final_out = self.stacked_dnn(cross_out)
            elif self.model_structure == "parallel":
                final_out = torch.cat([cross_out, self.parallel_dnn(feature_emb)], dim=-1)
            else:  # stacked_parallel
                final_out = torch.cat([self.stacked_dnn(cross_out), self.parallel_dnn(feature_emb)], dim=-1)
            y_pred = self.output_activation(self.fc(final_out))
            return {"y_pred": y_pred}

    class DeepFM(_Timed):
        def __init__(self, feature_map, model_id="DeepFM", gpu=-1, learning_rate=1e-3, embedding_dim=10,
                     hidden_units=[64, 64, 64], hidden_activations="ReLU", net_dropout=0, batch_norm=False,
                     embedding_regularizer=None, net_regularizer=None, **kwargs):  # fmt: skip
            super().__init__(feature_map, model_id=model_id, gpu=gpu, embedding_regularizer=embedding_regularizer,
                             net_regularizer=net_regularizer, **kwargs)  # fmt: skip
            self._reset_counters()
            self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
            self.fm = FactorizationMachine(feature_map)
            self.mlp = MLP_Block(input_dim=feature_map.sum_emb_out_dim(), output_dim=1, hidden_units=hidden_units,
                                 hidden_activations=hidden_activations, output_activation=None,
                                 dropout_rates=net_dropout, batch_norm=batch_norm)  # fmt: skip
            self.compile(kwargs["optimizer"], kwargs["loss"], learning_rate)
            self.reset_parameters()
            self.model_to_device()

        def forward(self, inputs):
            X = self.get_inputs(inputs)
            feature_emb = self.embedding_layer(X)
            y_pred = self.fm(X, feature_emb)
            y_pred += self.mlp(feature_emb.flatten(start_dim=1))
            return {"y_pred": self.output_activation(y_pred)}

    return {"DCNv2": DCNv2, "DeepFM": DeepFM}


@contextlib.contextmanager
def _log_to(file: Path) -> Iterator[None]:
    """Route the root logger (FuxiCTR logs with ``logging.info``) to ``file`` only, restoring it afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    handler = logging.FileHandler(file, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        handler.close()
        root.handlers = saved_handlers
        root.setLevel(saved_level)


def _write_dataset(
    train: pl.DataFrame, valid: pl.DataFrame, test: pl.DataFrame, vocab_sizes: dict[str, int], data_dir: Path
) -> list[str]:
    """feature_map.json and {train,valid,test}.npz as FuxiCTR's preprocessing would leave them."""
    features = [c for c in train.columns if c != LABEL]
    missing = set(features) - set(vocab_sizes)
    if missing:
        raise ValueError(f"no vocab size for {sorted(missing)}")
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", train), ("valid", valid), ("test", test)):
        if frame.columns != train.columns:
            raise ValueError(f"{name} columns {frame.columns} differ from train's {train.columns}")
        arrays: dict[str, np.ndarray] = {}
        for c in features:
            values = frame[c].fill_null(0).to_numpy().astype(np.int64)
            if values.size and (values.min() < 0 or values.max() >= vocab_sizes[c]):
                raise ValueError(f"{name}.{c} has values outside [0, {vocab_sizes[c]})")
            arrays[c] = values
        arrays[LABEL] = frame[LABEL].cast(pl.Float32).to_numpy()
        np.savez(data_dir / f"{name}.npz", **arrays)
    feature_map = {
        "dataset_id": DATASET_ID,
        "num_fields": len(features),
        "total_features": int(sum(vocab_sizes[c] for c in features)),
        "input_length": len(features),
        "labels": [LABEL],
        "features": [{c: {"source": "", "type": "categorical", "vocab_size": int(vocab_sizes[c])}} for c in features],
    }
    (data_dir / "feature_map.json").write_text(json.dumps(feature_map, indent=2))
    return features


def run_fuxictr(
    model: str,
    train: pl.DataFrame,
    valid: pl.DataFrame,
    test: pl.DataFrame,
    vocab_sizes: dict[str, int],
    work_dir: Path,
    embedding_dim: int = 16,
    batch_size: int = 4096,
    lr: float = 1e-3,
    max_epochs: int = 10,
    patience: int = 1,
    seed: int = 0,
    hidden_units: tuple[int, ...] = (256, 256),
    num_cross_layers: int = 3,
    *,
    reduce_lr_on_plateau: bool = True,  # FuxiCTR's default; irrelevant with patience=1 (it stops at the first plateau)
    num_workers: int = 0,  # NpzDataLoader worker processes; 0 = load in the training process (fastest on 2 cores)
    num_threads: int | None = None,  # torch intra-op threads; None = every CPU this process may use
) -> FuxiRun:
    """Train FuxiCTR's ``model`` on ``train`` with early stopping on ``valid`` AUC; evaluate on ``test``.

    Every frame holds one integer column per categorical feature (``0 <= value < vocab_sizes[column]``, 0 = unknown)
    and a 0/1 ``label`` column. Scratch files (npz data, feature map, checkpoint, FuxiCTR's log) go under
    ``work_dir``. Runs on CPU; sets ``torch.set_num_threads`` (process-wide) and, for the duration of the run,
    routes the root logger to ``work_dir/<model>.log`` only (FuxiCTR logs through ``logging.info``).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")
    import torch
    from fuxictr.features import FeatureMap
    from fuxictr.pytorch.dataloaders.npz_dataloader import NpzDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything

    torch.set_num_threads(num_threads or len(os.sched_getaffinity(0)))
    work_dir = Path(work_dir).resolve()
    data_dir = work_dir / "data"
    model_root = work_dir / "checkpoints"
    (model_root / DATASET_ID).mkdir(parents=True, exist_ok=True)  # BaseModel saves there but never creates it
    _write_dataset(train, valid, test, vocab_sizes, data_dir)

    params: dict[str, Any] = dict(  # the zoo's *_default configs, with the caller's sizes
        model_root=str(model_root), gpu=-1, verbose=0, task="binary_classification", loss="binary_crossentropy",
        metrics=["logloss", "AUC"], optimizer="adam", learning_rate=lr, embedding_dim=embedding_dim,
        embedding_regularizer=0, net_regularizer=0, net_dropout=0, batch_norm=False, monitor="AUC",
        monitor_mode="max", early_stop_patience=patience, save_best_only=True, eval_steps=None,
        reduce_lr_on_plateau=reduce_lr_on_plateau,
    )  # fmt: skip
    if model == "DCNv2":
        params.update(model_structure="parallel", use_low_rank_mixture=False, dnn_activations="ReLU",
                      parallel_dnn_hidden_units=list(hidden_units), stacked_dnn_hidden_units=list(hidden_units),
                      num_cross_layers=num_cross_layers)  # fmt: skip
    else:
        params.update(hidden_units=list(hidden_units), hidden_activations="ReLU")

    with _log_to(work_dir / f"{model}.log"):
        seed_everything(seed)
        feature_map = FeatureMap(DATASET_ID, str(data_dir))
        feature_map.load(str(data_dir / "feature_map.json"), params)
        net = _model_classes()[model](feature_map, model_id=model, **params)

        def loader(split: str, shuffle: bool) -> NpzDataLoader:
            return NpzDataLoader(feature_map, str(data_dir / f"{split}.npz"), batch_size=batch_size,
                                 shuffle=shuffle, num_workers=num_workers)  # fmt: skip

        train_gen, valid_gen, test_gen = loader("train", True), loader("valid", False), loader("test", False)
        start = time.perf_counter()
        net.fit(train_gen, epochs=max_epochs, validation_data=valid_gen)  # restores the best checkpoint at the end
        fit_seconds = time.perf_counter() - start
        train_seconds = fit_seconds - net.eval_seconds
        logging.info("fit %.2fs, of which validation %.2fs", fit_seconds, net.eval_seconds)
        test_logs = net.evaluate(test_gen, metrics=["logloss", "AUC"])

    return FuxiRun(
        model=model,
        test_auc=float(test_logs["AUC"]),
        test_logloss=float(test_logs["logloss"]),
        valid_auc=float(net._best_metric),
        epochs=net._epoch_index + 1,
        best_epoch=net.best_epoch,
        train_seconds=train_seconds,
        samples_per_second=net.rows_trained / train_seconds,
    )


def synthetic_frame(
    n_rows: int = 50_000, n_features: int = 5, vocab: int = 1_000, seed: int = 0
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Integer-encoded categorical columns (Zipf-ish ids, 0 = unknown) with labels from a hidden logistic model
    of per-value weights plus one pairwise interaction."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    logit = np.full(n_rows, -0.3)
    for i in range(n_features):
        ids = np.minimum(rng.zipf(1.3, n_rows), vocab - 1)
        ids[rng.random(n_rows) < 0.02] = 0
        columns[f"f{i}"] = ids
        logit += rng.normal(0, 1.0, vocab)[ids]
    logit += 0.8 * np.sign(rng.normal(0, 1, (vocab, vocab))[columns["f0"], columns[f"f{min(1, n_features - 1)}"]])
    label = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    frame = pl.DataFrame({**{c: pl.Series(c, v, dtype=pl.Int64) for c, v in columns.items()}, LABEL: label})
    return frame, {c: vocab for c in columns}


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see the module docstring
    parser = argparse.ArgumentParser(description="Smoke run: FuxiCTR DCNv2 and DeepFM on a synthetic CTR frame.")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=5)
    parser.add_argument("--vocab", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--work-dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = parser.parse_args()

    frame, vocab_sizes = synthetic_frame(args.rows, args.features, args.vocab, args.seed)
    split = np.random.default_rng(args.seed + 1).choice(3, size=frame.height, p=[0.8, 0.1, 0.1])
    train, valid, test = (frame.filter(pl.Series(split == k)) for k in range(3))
    print(f"synthetic: {train.height}/{valid.height}/{test.height} rows, positives {frame[LABEL].mean():.3f}")
    with tempfile.TemporaryDirectory() if args.work_dir is None else contextlib.nullcontext(args.work_dir) as wd:
        for model in args.models:
            run = run_fuxictr(model, train, valid, test, vocab_sizes, Path(wd) / model, seed=args.seed,
                              max_epochs=args.epochs, batch_size=args.batch_size)  # fmt: skip
            print(asdict(run))


if __name__ == "__main__":
    main()
