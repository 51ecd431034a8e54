"""The caching contract every stage keeps: content-addressed output folders, written atomically.

A stage's output lives at ``<output_root>/<stage>/<fingerprint>/`` where the fingerprint hashes the upstream
fingerprints, the stage's config and its code version. If the folder is complete, the stage is a cache hit and
does no work. Otherwise it is built in a private temporary sibling folder and renamed into place in one step, so a
run killed mid-write leaves no half-written version behind and simply re-running completes it; concurrent runs of
the same version wait for one another instead of racing (see `run_cached`). Old versions are kept, never rewritten:
changing the config creates a new folder beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops.locks import file_lock, is_locked
from ops.tables import write_text_atomic

MANIFEST = "manifest.json"
FINGERPRINT_LENGTH = 16  # hex characters kept: 64 bits, plenty for the versions of one stage
FINGERPRINT = re.compile(f"[0-9a-f]{{{FINGERPRINT_LENGTH}}}")
TEMPORARY_PREFIX = ".tmp-"


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
    on_wait: Callable[[str], None] | None = None,
) -> StageOutput:
    """Return the cached version of ``stage`` or build it and publish it once.

    ``build(folder)`` writes the stage's files into ``folder`` and returns the manifest entries (counts,
    metrics) to store beside them. The publish protocol, safe under concurrent runs and crashes:

    - A version is complete when its ``manifest.json`` exists. The manifest is written last, inside a private
      temporary folder, and the folder is renamed into place in one step: no reader ever sees a part.
    - Builders of one fingerprint take its lock file (`ops.locks.file_lock`) first, so a second builder waits
      (``on_wait`` hears why) and then finds the first one's version: a hit, no work done twice.
    - A published version is never deleted or rewritten; a reader may rely on it for as long as it likes.
    - Temporary folders are cleaned only when no live builder holds their fingerprint's lock, so a killed run's
      leftovers go at the next call of that stage (a build or a hit), and a live build's never.
    """
    final = Path(output_root) / stage / stage_fingerprint
    if is_complete(final):
        _remove_dead_temporaries(final.parent, held=None)  # a killed run's leftovers of a version built since
        return StageOutput(stage, stage_fingerprint, str(final), read_manifest(final), cache_hit=True)
    final.parent.mkdir(parents=True, exist_ok=True)

    def waiting() -> None:
        if on_wait is not None:
            on_wait(f"{stage} {stage_fingerprint} is being built by another run; waiting for it")

    with file_lock(_lock_file(final.parent, stage_fingerprint), on_wait=waiting):
        if is_complete(final):  # the run we waited for published it
            return StageOutput(stage, stage_fingerprint, str(final), read_manifest(final), cache_hit=True)
        _remove_dead_temporaries(final.parent, held=stage_fingerprint)
        temporary = final.parent / f"{TEMPORARY_PREFIX}{stage_fingerprint}-{uuid.uuid4().hex[:8]}"
        temporary.mkdir()
        try:
            manifest = {"stage": stage, "fingerprint": stage_fingerprint, **build(temporary)}
            write_text_atomic(temporary / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
            if final.exists():  # a folder without a manifest (an older layout): never read, so set aside
                _discard(final)
            os.rename(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return StageOutput(stage, stage_fingerprint, str(final), manifest, cache_hit=False)


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` is a published version: its manifest, the last file a build writes, exists."""
    return (Path(folder) / MANIFEST).is_file()


def existing_version(output_root: Path, stage: str, version: str) -> StageOutput:
    """The stored version ``version`` (a fingerprint) of ``stage``, for config that pins an exact version.

    A pin must be a fingerprint (``FINGERPRINT_LENGTH`` lowercase hex characters), never a path, so it always
    resolves inside ``<output_root>/<stage>/`` and can never name a table of another output root or another
    stage; the manifest found there must say it is that stage and that version. Failures name the versions that
    do exist, so a mistyped fingerprint is a one-step fix.
    """
    stage_folder = Path(output_root).resolve() / stage
    known = sorted(p.name for p in stage_folder.glob("*") if is_complete(p)) if stage_folder.is_dir() else []
    if not FINGERPRINT.fullmatch(version):
        raise ValueError(
            f"{stage} version {version!r} is not a fingerprint ({FINGERPRINT_LENGTH} hex characters, e.g. the name "
            f"of a folder under {stage_folder}); stored versions: {known}"
        )
    folder = stage_folder / version
    if not is_complete(folder):
        raise FileNotFoundError(f"no {stage} version {version!r} under {stage_folder}; stored versions: {known}")
    manifest = read_manifest(folder)
    if manifest.get("stage", stage) != stage or manifest.get("fingerprint", version) != version:
        raise ValueError(
            f"{folder} holds {manifest.get('stage')} version {manifest.get('fingerprint')}, not {stage} {version}"
        )
    return StageOutput(stage, version, str(folder), manifest, cache_hit=True)


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST).read_text())


def _lock_file(stage_folder: Path, stage_fingerprint: str) -> Path:
    """``<output_root>/.locks/<stage>/<fingerprint>.lock``: beside the versions, never among them."""
    return stage_folder.parent / ".locks" / stage_folder.name / f"{stage_fingerprint}.lock"


def _remove_dead_temporaries(stage_folder: Path, held: str | None) -> None:
    """Delete temporary folders whose builder is gone: ours (we hold that lock) and any whose lock is free.

    A live builder takes its lock before it creates its temporary folder, so a folder seen here whose lock is
    free belongs to a run that crashed or was killed; it is never read, only cleaned.
    """
    for temporary in stage_folder.glob(f"{TEMPORARY_PREFIX}*"):
        owner = temporary.name.removeprefix(TEMPORARY_PREFIX).rsplit("-", 1)[0]
        if owner == held or not is_locked(_lock_file(stage_folder, owner)):
            shutil.rmtree(temporary, ignore_errors=True)


def _discard(folder: Path) -> None:
    """Move ``folder`` out of the way in one rename, then delete it."""
    aside = folder.with_name(f"{TEMPORARY_PREFIX}{folder.name}-discarded-{uuid.uuid4().hex[:8]}")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)
