"""cornac 3.0.1's TIGER and SASRec on semid's leave-one-out split, under a wall-clock training budget.

The baseline that ``bench/retrieval.py`` puts beside semid's own generative retriever and SASRec: the same
split (train on each user's ``train`` items; predict the ``test`` item from ``train`` + ``valid``), the same
metrics (``ops.retrieval.metrics``), the same budget.

What is measured, and how the budget is enforced
-------------------------------------------------
Both cornac models train on ``cornac.models.seq_utils.session_seq_iter``: for a training session
``[i0, ..., iT]`` it yields one example per prefix, ``(i0..i_{t-1}) -> i_t`` (left-padded to ``max_len``), so
one cornac training sample *is* one next-item prediction example; an epoch over Beauty's train part is
153,776 - 22,363 = 131,413 of them. ``samples_per_second`` = those examples / ``train_seconds``.

cornac exposes no step callback, so each model's module-level ``session_seq_iter`` is wrapped (for the
duration of ``fit`` only) by a generator that counts the examples it hands out and stops handing out batches
once the next step would end past the deadline (estimated from the mean step time so far). cornac's own epoch
loop then ends the epoch normally and finishes ``fit`` (checkpoint restore, ``.eval()``): no step is cut in
half and the model is whole. Later epochs get an empty iterator and cost nothing; ``n_epochs`` defaults to a
cap the budget cannot reach, so the budget, not cornac's epoch count, decides (pass ``n_epochs=`` to change).

The budget clock starts when the sequence model's training starts (first batch requested); TIGER's semantic-ID
construction (RQ-VAE training or residual k-means, plus the collision level) happens before that, is timed
separately and reported in ``notes``, because semid's Semantic IDs come from a separate cached stage.

Evaluation: all test users by default. SASRec: ``model.score`` (full ranking over all items, cornac's path),
top-20 by score. TIGER: cornac's constrained beam search (``TIGERSeq2Seq.generate_beam``, exactly what
``TIGER.score`` runs, one history at a time) with ``n_beams`` >= 20, whose beams are read directly so their
order and validity can be checked (``invalid_items`` = returned Semantic IDs that map to no item). cornac's
``score`` does not drop already-seen items, and neither does this (semid's metrics don't either).

Run as a module (``bench/tokenizers.py`` would shadow the ``tokenizers`` package that transformers, hence
cornac's TIGER, imports)::

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.cornac_baseline --model tiger --budget-seconds 300
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ops.retrieval.metrics import KS, recall_ndcg, target_ranks

TOP_K = max(KS)
_T0 = time.perf_counter()


def _log(message: str) -> None:
    print(f"[cornac_baseline {time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


EPOCH_CAP = 10_000  # n_epochs given to cornac unless overridden: the wall-clock budget is what stops training


@dataclass(frozen=True)
class CornacRun:
    model: str  # "cornac TIGER" | "cornac SASRec"
    metrics: dict[str, float]  # recall@5, ndcg@5, recall@10, ndcg@10, recall@20, ndcg@20 over the evaluated users
    train_seconds: float  # wall time of the sequence model's training (TIGER: after its Semantic IDs are built)
    train_samples: int  # (prefix -> next item) examples trained on = one next-item prediction example each
    samples_per_second: float
    epochs_completed: float  # train_samples / examples per epoch (fractional when the budget stopped mid-epoch)
    invalid_items: int | None  # TIGER: returned Semantic IDs that are no item's (None for SASRec)
    notes: str


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _CornacData:
    train_set: Any  # cornac.data.SequentialDataset: train items per user
    val_set: Any  # train + valid items per user (cornac's "last" mode: the last one is the target)
    item_ids: list[str]  # cornac item index -> item id
    histories: list[np.ndarray]  # per test user: train + valid item indices, in order
    targets: np.ndarray  # per test user: the test item index
    samples_per_epoch: int


def _build_data(splits: pl.DataFrame, item_ids: list[str] | None = None) -> _CornacData:
    """cornac datasets over ``splits``; one session per user, items indexed in ``item_ids`` order when given."""
    from cornac.data import SequentialDataset

    if item_ids is None:
        item_ids = splits["item_id"].unique(maintain_order=True).to_list()
    iid_map: OrderedDict[str, int] = OrderedDict((item, i) for i, item in enumerate(item_ids))
    unknown = set(splits["item_id"].unique().to_list()) - iid_map.keys()
    if unknown:
        raise ValueError(f"{len(unknown)} items of the split have no embedding, e.g. {sorted(unknown)[:3]}")
    uid_map: OrderedDict[str, int] = OrderedDict()
    sid_map: OrderedDict[str, int] = OrderedDict()

    table = splits.select("user_id", "item_id", "position", pl.col("split").cast(pl.Utf8)).sort("user_id", "position")

    def usit(frame: pl.DataFrame) -> list[tuple[str, str, str, int]]:
        # (user, session, item, "timestamp" = position): one session per user, rows already in order
        return [(u, u, i, p) for u, i, p in frame.select("user_id", "item_id", "position").iter_rows()]

    train = table.filter(pl.col("split") == "train")
    history = table.filter(pl.col("split") != "test")
    train_set = SequentialDataset.build(
        usit(train), fmt="USIT", global_uid_map=uid_map, global_iid_map=iid_map, global_sid_map=sid_map
    )
    # the validation sessions live in their own session-id space ("<user>#val") so cornac keeps them apart
    val_set = SequentialDataset.build(
        [(u, f"{s}#val", i, p) for u, s, i, p in usit(history)],
        fmt="USIT",
        global_uid_map=uid_map,
        global_iid_map=iid_map,
        global_sid_map=sid_map,
    )
    if len(iid_map) != len(item_ids):
        raise AssertionError("cornac grew the item map")

    histories_by_user = history.group_by("user_id", maintain_order=True).agg(pl.col("item_id"))
    tests = table.filter(pl.col("split") == "test").select("user_id", "item_id")
    joined = histories_by_user.join(tests, on="user_id", suffix="_test")
    histories = [np.fromiter((iid_map[i] for i in items), dtype=np.int64) for items in joined["item_id"].to_list()]
    targets = np.fromiter((iid_map[i] for i in joined["item_id_test"].to_list()), dtype=np.int64)
    samples_per_epoch = int(train.height - train["user_id"].n_unique())  # sessions of n items give n - 1
    return _CornacData(train_set, val_set, list(item_ids), histories, targets, samples_per_epoch)


# -------------------------------------------------------------------------------------- the budget


class _BudgetedIterator:
    """Stands in for ``session_seq_iter`` inside one cornac model module: counts examples, enforces a deadline."""

    def __init__(self, original, budget_seconds: float, model: Any):
        self.original = original
        self.budget = float(budget_seconds)
        self.model = model
        self.start: float | None = None
        self.steps = 0
        self.samples = 0
        self.epochs_entered = 0
        self.stopped_by_budget = False

    def __call__(self, *args, **kwargs) -> Iterator[Any]:
        if self.start is None:
            self.start = time.perf_counter()
        return self._run(args, kwargs)

    def _run(self, args, kwargs) -> Iterator[Any]:
        if self.stopped_by_budget:
            return
        self.epochs_entered += 1
        for batch in self.original(*args, **kwargs):
            elapsed = time.perf_counter() - self.start
            mean_step = elapsed / self.steps if self.steps else 0.0
            if elapsed + mean_step > self.budget:
                self.stopped_by_budget = True
                # no further validation passes for the empty epochs that follow (model_selection="best")
                if hasattr(self.model, "val_eval_every"):
                    self.model.val_eval_every = 10**9
                return
            n = len(batch[1])
            if n >= 2:  # cornac's SASRec skips batches of one; TIGER never yields them
                self.steps += 1
                self.samples += n
            yield batch


@contextlib.contextmanager
def _budget(module_name: str, budget_seconds: float, model: Any):
    module = importlib.import_module(module_name)
    original = module.session_seq_iter
    wrapper = _BudgetedIterator(original, budget_seconds, model)
    module.session_seq_iter = wrapper
    try:
        yield wrapper
    finally:
        module.session_seq_iter = original


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _finish(
    name: str,
    ranked: np.ndarray,
    targets: np.ndarray,
    wrapper: _BudgetedIterator,
    train_seconds: float,
    samples_per_epoch: int,
    invalid: int | None,
    notes: list[str],
) -> CornacRun:
    metrics = recall_ndcg(target_ranks(ranked, targets))
    return CornacRun(
        model=name,
        metrics=metrics,
        train_seconds=train_seconds,
        train_samples=wrapper.samples,
        samples_per_second=wrapper.samples / train_seconds if train_seconds > 0 else 0.0,
        epochs_completed=wrapper.samples / samples_per_epoch,
        invalid_items=invalid,
        notes=" | ".join(notes),
    )


def _eval_users(n_users: int, max_eval_users: int | None, seed: int) -> np.ndarray:
    if max_eval_users is None or max_eval_users >= n_users:
        return np.arange(n_users)
    return np.sort(np.random.default_rng(seed).choice(n_users, size=max_eval_users, replace=False))


def _budget_note(wrapper: _BudgetedIterator, budget_seconds: float, train_seconds: float, spe: int) -> str:
    how = "stopped by the budget" if wrapper.stopped_by_budget else "cornac's n_epochs ran out before the budget"
    return (
        f"budget {budget_seconds:.0f}s -> {wrapper.steps} steps, {wrapper.samples} examples "
        f"= {wrapper.samples / spe:.3f} epochs of {spe} ({how}), training wall {train_seconds:.1f}s"
    )


# -------------------------------------------------------------------------------------------- TIGER


def run_cornac_tiger(
    splits: pl.DataFrame,
    item_embeddings: tuple[list[str], np.ndarray],
    budget_seconds: float,
    seed: int = 0,
    *,
    max_eval_users: int | None = None,
    threads: int = 2,
    **model_kwargs,
) -> CornacRun:
    """cornac's TIGER (its defaults: RQ-VAE Semantic IDs, 4+4-layer T5, beam 20) trained for ``budget_seconds``.

    ``model_kwargs`` go to ``cornac.models.TIGER`` (e.g. ``**cornac.models.tiger.GRID_CONFIG``); ``n_beams`` is
    raised to 20 (the largest cut-off). ``max_eval_users`` evaluates a seeded sample instead of every user.
    """
    import torch
    from cornac.data import FeatureModality
    from cornac.models import TIGER

    _set_threads(threads)
    ids, vectors = item_embeddings
    data = _build_data(splits, list(ids))
    features = FeatureModality(features=np.asarray(vectors, dtype=np.float32), ids=list(ids))
    features.build(id_map=data.train_set.iid_map)
    data.train_set.add_modalities(item_feature=features)

    kwargs = {"n_epochs": EPOCH_CAP, "verbose": False, **model_kwargs, "seed": seed}
    kwargs["n_beams"] = max(int(kwargs.get("n_beams", 20)), TOP_K)
    model = TIGER(**kwargs)

    _log(f"TIGER fit: tokenizer {model.tokenizer}, then {budget_seconds:.0f}s of seq2seq training")
    fit_start = time.perf_counter()
    with _budget("cornac.models.tiger.recom_tiger", budget_seconds, model) as wrapper:
        model.fit(data.train_set, data.val_set)
    fit_end = time.perf_counter()
    _log(f"TIGER trained: {wrapper.samples} examples in {fit_end - (wrapper.start or fit_end):.1f}s")
    if wrapper.start is None:
        raise RuntimeError("cornac's TIGER never asked for training batches")
    tokenizer_seconds = wrapper.start - fit_start
    train_seconds = fit_end - wrapper.start

    # --- decode: cornac's constrained beam search, one history at a time (as TIGER.score does)
    net = model.model.eval()
    users = _eval_users(len(data.targets), max_eval_users, seed)
    ranked = np.full((len(users), TOP_K), -1, dtype=np.int64)
    invalid = 0
    short = 0
    decode_start = time.perf_counter()
    with torch.no_grad():
        for row, user in enumerate(users):
            hist = [int(i) for i in data.histories[user]][-model.max_len :]
            hist = [model.pad_idx] * (model.max_len - len(hist)) + hist
            tokens = torch.tensor(model.enc_token_table[hist].reshape(1, -1), dtype=torch.long)
            mask = (tokens != 0).float()
            beams, _ = net.generate_beam(tokens, mask, model.n_beams, model.prefix_children)
            items = [model.sid_to_item.get(tuple(int(c) for c in sid), -1) for sid in beams]
            invalid += sum(1 for i in items if i < 0)
            short += len(items) < TOP_K
            top = items[:TOP_K]
            ranked[row, : len(top)] = top
            if (row + 1) % 500 == 0:
                rate = (row + 1) / (time.perf_counter() - decode_start)
                _log(f"TIGER decode {row + 1}/{len(users)} users, {rate:.1f} users/s")
    decode_seconds = time.perf_counter() - decode_start

    n_collisions = int((model.sid_table[:, -1] > 0).sum())
    n_sids = len({tuple(r) for r in model.sid_table[:, :-1].tolist()})
    notes = [
        _budget_note(wrapper, budget_seconds, train_seconds, data.samples_per_epoch),
        f"Semantic IDs ({model.tokenizer}, {model.rqvae_num_levels}x{model.rqvae_codebook_size} + collision level "
        f"of size {model.level_sizes[-1]}) built in {tokenizer_seconds:.1f}s, outside the budget: "
        f"{n_sids} distinct code tuples for {len(model.sid_table)} items, {n_collisions} items disambiguated",
        f"decode: constrained beam search, n_beams={model.n_beams}, batch 1: {len(users)} users in "
        f"{decode_seconds:.1f}s = {len(users) / decode_seconds:.1f} users/s "
        f"({decode_seconds / len(users) * 1000:.1f} ms/user)",
        f"invalid returned items {invalid} (the prefix trie makes every beam an item's ID), "
        f"users with fewer than {TOP_K} beams {short}",
        f"model: d_model {model.d_model}, {model.num_enc_layers}+{model.num_dec_layers} layers, batch "
        f"{model.batch_size}, lr {model.learning_rate} ({model.lr_schedule}), max_len {model.max_len}, "
        f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f}M parameters",
        f"torch threads {torch.get_num_threads()}",
    ]
    if len(users) < len(data.targets):
        notes.append(f"EVALUATED A SEEDED SAMPLE of {len(users)} of {len(data.targets)} users (seed {seed})")
    return _finish(
        "cornac TIGER", ranked, data.targets[users], wrapper, train_seconds, data.samples_per_epoch, invalid, notes
    )


# ------------------------------------------------------------------------------------------- SASRec


def run_cornac_sasrec(
    splits: pl.DataFrame,
    budget_seconds: float,
    seed: int = 0,
    *,
    max_eval_users: int | None = None,
    threads: int = 2,
    eval_batch: int = 256,
    **model_kwargs,
) -> CornacRun:
    """cornac's SASRec (its defaults: 2 blocks, 1 head, dim 100, CE over 2,048 sampled negatives) for the budget.

    Scores every item (``model.score``) for each test user; ``model_kwargs`` go to ``cornac.models.SASRec``.
    """
    import torch
    from cornac.models import SASRec

    _set_threads(threads)
    data = _build_data(splits)
    kwargs = {"n_epochs": EPOCH_CAP, "verbose": False, **model_kwargs, "seed": seed}
    model = SASRec(**kwargs)

    _log(f"SASRec fit: {budget_seconds:.0f}s budget")
    with _budget("cornac.models.sasrec.recom_sasrec", budget_seconds, model) as wrapper:
        model.fit(data.train_set, data.val_set)
    fit_end = time.perf_counter()
    _log(f"SASRec trained: {wrapper.samples} examples in {fit_end - (wrapper.start or fit_end):.1f}s")
    if wrapper.start is None:
        raise RuntimeError("cornac's SASRec never asked for training batches")
    train_seconds = fit_end - wrapper.start

    # model.score (cornac's per-user path) pads/truncates the history to max_len and calls SASRecModel.predict on
    # one sequence; predict takes a batch of such sequences as well, which is the same computation (checked on the
    # first users below against model.score) at a fraction of the per-call overhead.
    users = _eval_users(len(data.targets), max_eval_users, seed)
    ranked = np.empty((len(users), TOP_K), dtype=np.int64)
    net = model.model.eval()
    eval_start = time.perf_counter()
    with torch.no_grad():
        for start in range(0, len(users), eval_batch):
            chunk = users[start : start + eval_batch]
            seqs = np.full((len(chunk), model.max_len), model.pad_idx, dtype=np.int64)
            for row, user in enumerate(chunk):
                hist = data.histories[user][-model.max_len :]
                seqs[row, model.max_len - len(hist) :] = hist
            scores = np.asarray(net.predict(None, torch.as_tensor(seqs))).reshape(len(chunk), -1)
            top = np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
            ranked[start : start + len(chunk)] = np.take_along_axis(top, order, axis=1)
            if start == 0:
                for row in range(min(8, len(chunk))):
                    single = model.score(int(chunk[row]), [int(i) for i in data.histories[chunk[row]]])
                    if not np.allclose(single, scores[row], rtol=1e-4, atol=1e-4):
                        raise AssertionError("batched SASRecModel.predict disagrees with SASRec.score")
    eval_seconds = time.perf_counter() - eval_start

    notes = [
        _budget_note(wrapper, budget_seconds, train_seconds, data.samples_per_epoch),
        f"eval: full ranking of all {model.total_items} items (SASRecModel.predict, batch {eval_batch}): {len(users)} users in {eval_seconds:.1f}s"
        f" = {len(users) / eval_seconds:.0f} users/s",
        f"model: dim {model.embedding_dim}, {model.num_blocks} blocks, {model.num_heads} head(s), loss {model.loss} "
        f"with {model.n_sample} shared popularity-sampled negatives, batch {model.batch_size}, "
        f"lr {model.learning_rate}, max_len {model.max_len}, last-position loss only",
        f"torch threads {torch.get_num_threads()}",
    ]
    if len(users) < len(data.targets):
        notes.append(f"EVALUATED A SEEDED SAMPLE of {len(users)} of {len(data.targets)} users (seed {seed})")
    return _finish(
        "cornac SASRec", ranked, data.targets[users], wrapper, train_seconds, data.samples_per_epoch, None, notes
    )


# ---------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("tiger", "sasrec"), required=True)
    parser.add_argument("--budget-seconds", type=float, default=300.0, help="training wall-clock budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-eval-users",
        type=int,
        default=None,
        help="evaluate a seeded sample of this many users instead of all (flagged in notes)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--tokenizer",
        choices=("rqvae", "rkmeans"),
        default=None,
        help="TIGER's Semantic-ID tokenizer (cornac's default: rqvae)",
    )
    parser.add_argument("--verbose", action="store_true", help="cornac's own progress bars")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--output-root", type=Path, default=Path("data"))
    args = parser.parse_args(argv)

    from ops.pipeline import prepare

    prepared = prepare("amazon2014-beauty", args.data_root, args.output_root)
    splits = pl.read_parquet(prepared.splits.file("leave_one_out.parquet"))
    if args.model == "tiger":
        from ops.embeddings.stage import read_embeddings

        ids, vectors = read_embeddings(prepared.embeddings)
        extra = {"tokenizer": args.tokenizer} if args.tokenizer else {}
        run = run_cornac_tiger(
            splits,
            (list(ids), vectors),
            args.budget_seconds,
            args.seed,
            max_eval_users=args.max_eval_users,
            threads=args.threads,
            verbose=args.verbose,
            **extra,
        )
    else:
        run = run_cornac_sasrec(
            splits,
            args.budget_seconds,
            args.seed,
            max_eval_users=args.max_eval_users,
            threads=args.threads,
            verbose=args.verbose,
        )
    for key, value in asdict(run).items():
        if key == "notes":
            print("notes:")
            for note in value.split(" | "):
                print(f"  - {note}")
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
