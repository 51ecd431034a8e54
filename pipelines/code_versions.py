"""Dagster code versions for semid's assets: a hash of the code that computes each one.

The UI then marks an asset stale ("code version changed") exactly when its stage's cache would miss for a code
change, so a user sees before launching which assets a pull or an edit invalidated. Each asset's version hashes
its `assets` module and the `ops` packages its group's stages read (the same sources the stages fingerprint),
plus the caching contract every stage shares.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path

from dagster import AssetsDefinition, AssetSpec, SourceAsset

from ops.caching import code_version

ROOT = Path(__file__).resolve().parent.parent
OPS = ROOT / "ops"
SHARED = (OPS / "caching.py", OPS / "tables.py", OPS / "locks.py")

# group -> the ops packages (or files) its stages run; an asset of a group not named here hashes its module only
GROUP_CODE: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest",),
    "embeddings": ("embeddings", "compute"),
    "tokenizers": ("quantizers", "embeddings/stage.py", "semantic_ids/reindexing.py"),
    "semantic_ids": ("semantic_ids", "quantizers"),
    "ctr": ("ctr", "compute"),
    "retrieval": ("retrieval",),
    "llm": ("llm", "embeddings"),
    "reports": ("reports", "diagnostics", "ctr/study.py", "retrieval/popularity.py"),
}
KEY_CODE: dict[str, tuple[str, ...]] = {
    "semantic_ids_lamia": ("semantic_ids", "quantizers", "llm/stage.py"),  # quantized from the llm job's palettes
}


def with_code_versions(assets: Iterable[AssetsDefinition | SourceAsset]) -> list[AssetsDefinition | SourceAsset]:
    """``assets`` with each computed asset's code version set; source assets (raw files) have no code."""
    return [
        asset if isinstance(asset, SourceAsset) or not asset.is_executable else _versioned(asset) for asset in assets
    ]


def asset_code_version(module_file: Path, group: str | None, key: str) -> str:
    """The hash of an asset's module, its group's ops sources and the shared stage code."""
    sources = KEY_CODE.get(key, GROUP_CODE.get(group or "", ()))
    return code_version(module_file, *SHARED, *_paths(sources))


def _versioned(asset: AssetsDefinition) -> AssetsDefinition:
    module_file = Path(inspect.getfile(asset.op.compute_fn.decorated_fn))

    def set_version(spec: AssetSpec) -> AssetSpec:
        version = asset_code_version(module_file, spec.group_name, spec.key.to_user_string())
        return spec.replace_attributes(code_version=version)

    return asset.map_asset_specs(set_version)


def _paths(sources: Sequence[str]) -> list[Path]:
    return [OPS / source for source in sources]
