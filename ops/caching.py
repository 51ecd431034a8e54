"""The caching contract every stage keeps: content-addressed output folders, written atomically.

A stage's output lives at ``<output_root>/<stage>/<fingerprint>/`` where the fingerprint hashes the upstream
fingerprints, the stage's config and its code version. If the folder exists, the stage is a cache hit and does
no work. Otherwise it is built in a temporary sibling folder and renamed into place in one step, so a run
killed mid-write leaves no half-written version behind and simply re-running completes it. Old versions are
kept: changing the config creates a new folder beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.tables import write_text_atomic

MANIFEST = "manifest.json"
FINGERPRINT_LENGTH = 16  # hex characters kept: 64 bits, plenty for the versions of one stage


@dataclass(frozen=True)
class StageOutput:
    """A handle on one materialized stage version; this small object is what Dagster passes between assets."""

    stage: str
    fingerprint: str
    path: str
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)
    cache_hit: bool = field(default=False, compare=False)

    def file(self, name: str) -> Path:
        return Path(self.path) / name


def canonical_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(payload: Mapping[str, Any]) -> str:
    """Stable short hash of a JSON-able payload (keys sorted, so dict order never matters)."""
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:FINGERPRINT_LENGTH]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes: inputs are fingerprinted by content, not by name or mtime."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version(*sources: Path) -> str:
    """Hash of the Python sources that compute a stage (files, or packages scanned for ``*.py``).

    Editing any of them invalidates that stage's cache; paths are hashed relative to each source, so the
    version is the same in every checkout.
    """
    digest = hashlib.sha256()
    for source in map(Path, sources):
        files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
        for file in files:
            digest.update(file.relative_to(source.parent).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def run_cached(
    output_root: Path,
    stage: str,
    stage_fingerprint: str,
    build: Callable[[Path], Mapping[str, Any]],
) -> StageOutput:
    """Return the cached version of ``stage`` or build it atomically.

    ``build(folder)`` writes the stage's files into ``folder`` and returns the manifest entries (counts,
    metrics) to store beside them; the manifest is written last, and the folder is renamed into place.
    """
    final = Path(output_root) / stage / stage_fingerprint
    if (final / MANIFEST).is_file():
        return StageOutput(stage, stage_fingerprint, str(final), read_manifest(final), cache_hit=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    temporary = final.parent / f".tmp-{stage_fingerprint}-{uuid.uuid4().hex[:8]}"
    temporary.mkdir()
    try:
        manifest = {"stage": stage, "fingerprint": stage_fingerprint, **build(temporary)}
        write_text_atomic(temporary / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        if final.exists():  # an incomplete folder from an older layout: replace it
            shutil.rmtree(final)
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return StageOutput(stage, stage_fingerprint, str(final), manifest, cache_hit=False)


def existing_version(output_root: Path, stage: str, version: str) -> StageOutput:
    """The stored version ``version`` (a fingerprint) of ``stage``, for config that pins an exact version.

    Fails with the versions that do exist, so a mistyped fingerprint is a one-step fix.
    """
    folder = Path(output_root) / stage / version
    if not (folder / MANIFEST).is_file():
        known = sorted(p.name for p in folder.parent.glob("*") if (p / MANIFEST).is_file())
        raise FileNotFoundError(f"no {stage} version {version!r} under {folder.parent}; stored versions: {known}")
    return StageOutput(stage, version, str(folder), read_manifest(folder), cache_hit=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST).read_text())


def _remove_stale_temporaries(final: Path) -> None:
    """Folders left by a killed run of this same version; they are never read, only cleaned."""
    for stale in final.parent.glob(f".tmp-{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
