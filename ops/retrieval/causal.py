"""Next-item training of any `transformers` causal LM on flattened Semantic IDs: every target of a user in one pass.

A user's items are flattened into one token sequence, as LAMIA's generative recommender reads them (section
4.2.4): ``[user token] u1,1 .. u1,L  u2,1 .. u2,L  ...`` (the `SIDData.inputs` layout, padding after). The loss
is the cross-entropy of every Semantic-ID token of every item after the first, so one causal pass over a window
of n items trains all n - 1 next-item targets, each on the items before it, where TIGER's encoder re-reads the
history once per target. Nothing here depends on the model's architecture: it needs ``get_decoder()`` (the
hidden states) and ``get_output_embeddings()`` (the LM head), which every causal LM of `transformers` has.

Windows: a user's train items are cut into windows of up to ``max_history + 1`` consecutive items that end at
the user's last train item and step back by ``max_history``, so consecutive windows share one item (the older
window's last is the newer one's first, read only as context) and every train item after the user's first is a
target exactly once per epoch, as in TIGER's examples. A target's history is the items before it in its window:
up to ``max_history`` items, fewer near the start of an older window (TIGER gives every target its last
``max_history`` items; overlapping windows would, at the cost of training most targets twice). On Beauty's
5-core, 96% of users have at most 21 train items: one window each.

A "sample" of the training loop is a next-item target, so targets/s compares directly with TIGER's examples/s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from transformers import PreTrainedModel

from ops.retrieval.sequences import Examples, UserSequences, length_batches
from ops.retrieval.sid_data import SIDData
from ops.retrieval.train import Task

IGNORE = -100  # label of a token that is not a target (the user token, the first item, padding)
Rows = Callable[[Examples], tuple[np.ndarray, np.ndarray, np.ndarray]]  # windows -> (input_ids, mask, labels)


def training_windows(sequences: UserSequences, max_history: int) -> Examples:
    """Windows of up to max_history + 1 train items (see the module docstring), newest first per user.

    ``length`` is the window's item count (targets = length - 1), ``end`` its exclusive end in
    ``sequences.items`` and ``target`` its last item.
    """
    counts = np.where(sequences.n_train >= 2, -(-(sequences.n_train - 1) // max_history), 0)  # (n_users,) windows
    users = np.repeat(np.arange(len(counts)), counts)  # (n,)
    newer = np.arange(len(users)) - np.repeat(np.cumsum(counts) - counts, counts)  # (n,) windows after this one
    first = sequences.start[users]
    end = first + sequences.n_train[users] - newer * max_history
    return Examples(end, np.minimum(end - first, max_history + 1), sequences.items[end - 1], users)


def window_batch(data: SIDData, windows: Examples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input_ids, attention_mask, labels), each (n, T): the windows' tokens, padding after them, and the token
    each position is trained on, IGNORE except the Semantic-ID tokens of every item after a window's first."""
    input_ids, mask = data.inputs(windows)  # (n, T)
    first = 1 if data.vocabulary.user_buckets else 0  # tokens before the first item
    item = (np.arange(input_ids.shape[1]) - first) // data.vocabulary.levels  # (T,) window item of each token
    return input_ids, mask, np.where((item >= 1) & (mask == 1), input_ids, IGNORE)


def token_losses(
    model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """(n_labels,) float32 cross-entropy of each labelled token given the tokens before it, in row-major order.

    Only the positions that predict a label go through the LM head: (n_labels, vocab) logits, not (n, T, vocab).
    """
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (n, T, d)
    targets = labels[:, 1:]  # (n, T - 1): position t predicts token t + 1
    predicting = targets != IGNORE
    logits = model.get_output_embeddings()(hidden[:, :-1][predicting])  # (n_labels, vocab)
    return torch.nn.functional.cross_entropy(logits.float(), targets[predicting], reduction="none")


def target_losses(model: PreTrainedModel, data: SIDData, windows: Examples) -> torch.Tensor:
    """(n_targets,) negative log-likelihood of each target item (the sum over its tokens), window by window and
    oldest target first within a window."""
    return token_losses(model, *window_tensors(model, data, windows)).view(-1, data.vocabulary.levels).sum(dim=1)


def window_tensors(model: PreTrainedModel, data: SIDData, windows: Examples) -> tuple[torch.Tensor, ...]:
    """`window_batch` as tensors on the model's device."""
    return on_device(model, window_batch(data, windows))


def on_device(model: torch.nn.Module, arrays: tuple[np.ndarray, ...]) -> tuple[torch.Tensor, ...]:
    """Numpy arrays as tensors on the model's device."""
    device = next(model.parameters()).device
    return tuple(torch.from_numpy(array).to(device) for array in arrays)


def next_item_task(
    model: PreTrainedModel,
    data: SIDData,
    windows: Examples,
    batch_size: int,
    validate: Callable[[], dict[str, float]],
    arrange: Rows | None = None,
) -> Task[Examples]:
    """Mean token cross-entropy over every target of ``batch_size`` windows per step (TIGER's loss, per token);
    ``validate`` scores the validation users. ``arrange`` lays windows out as model inputs and labels,
    `window_batch` by default (the LLM recommender wraps the same windows in its prompt)."""
    arrange = arrange or functools.partial(window_batch, data)

    def loss(batch: Examples) -> tuple[torch.Tensor, int]:
        return token_losses(model, *on_device(model, arrange(batch))).mean(), int((batch.length - 1).sum())

    return Task(
        batches=lambda rng: (windows.subset(rows) for rows in length_batches(windows.length, batch_size, rng)),
        loss=loss,
        validate=validate,
    )
