"""Semantic-ID stability: how many items changed their Semantic ID between two table versions.

A downstream model trained on one version reads another correctly only for items whose ID did not move, so
re-indexing reports, per pair of versions: items kept, added and removed, and of the kept ones how many changed
their codes and how many their whole Semantic ID (codes or collision suffix). Under a frozen tokenizer the
answer is 0 by construction (`stage.append_items_stage`); after a retraining it is what the user pays for it.
The comparison is a cached stage (``semantic_id_changes``) whose folder lists the changed items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops.caching import StageOutput, code_version, fingerprint, run_cached
from ops.semantic_ids.stage import read_table
from ops.tables import write_parquet_atomic

STAGE = "semantic_id_changes"
CHANGED = "changed_items.parquet"


def compare_versions(output_root: Path, before: StageOutput, after: StageOutput) -> StageOutput:
    """Compare (or find cached) two Semantic-ID table versions; the manifest holds the counts."""
    version = fingerprint({"before": before.fingerprint, "after": after.fingerprint, "code": _code()})

    def build(folder: Path) -> dict[str, Any]:
        old, new = read_table(before), read_table(after)
        kept = old.join(new, on="item_id", how="inner", suffix="_after")
        codes_moved = kept["codes"] != kept["codes_after"]
        id_moved = codes_moved | (kept["collision_suffix"] != kept["collision_suffix_after"])
        changed = kept.filter(id_moved).select(
            "item_id",
            codes_before="codes",
            suffix_before="collision_suffix",
            codes_after="codes_after",
            suffix_after="collision_suffix_after",
        )
        write_parquet_atomic(changed, folder / CHANGED)
        frozen = before.manifest["tokenizer"]["fingerprint"] == after.manifest["tokenizer"]["fingerprint"]
        return {
            "before": before.fingerprint,
            "after": after.fingerprint,
            "tokenizer": "frozen" if frozen else "retrained",
            "items_before": len(old),
            "items_after": len(new),
            "items_kept": len(kept),
            "items_added": len(new) - len(kept),
            "items_removed": len(old) - len(kept),
            "items_changed_codes": int(codes_moved.sum()),
            "items_changed_semantic_id": int(id_moved.sum()),
            "share_changed": float(id_moved.mean()) if len(kept) else 0.0,
        }

    return run_cached(output_root, STAGE, version, build)


def _code() -> str:
    return code_version(Path(__file__).resolve())
