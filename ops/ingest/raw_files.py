"""The raw files of a data set as content hashes: what the `raw_files` source asset reports and the sensor watches.

A file is hashed by content (sha256, as `stages.normalize` fingerprints it), so a touched but unchanged file
is no change. The previous state is passed back in so a file whose size and mtime are unchanged is not re-read:
a sensor tick over every data set then costs a ``stat`` per file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ops.caching import file_digest, fingerprint
from ops.ingest.datasets import DatasetSpec


@dataclass(frozen=True)
class FileState:
    size: int  # bytes, from stat
    mtime_ns: int  # modification time, from stat
    sha256: str  # content hash: what decides whether the file changed


def file_states(
    spec: DatasetSpec, data_root: Path, known: Mapping[str, FileState] | None = None
) -> dict[str, FileState] | None:
    """``{path: state}`` of every file ``spec`` reads, or None while any of them is missing (nothing to ingest yet).

    ``known`` is an earlier result: a file with the same size and mtime keeps its hash without being read.
    """
    known = known or {}
    states = {}
    for path in spec.paths(data_root).values():
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        previous = known.get(str(path))
        if previous is not None and (previous.size, previous.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            states[str(path)] = previous
        else:
            states[str(path)] = FileState(stat.st_size, stat.st_mtime_ns, file_digest(path))
    return states


def data_version(states: Mapping[str, FileState]) -> str:
    """One version for a data set's raw files: changes exactly when a file's content (or the set of files) does."""
    return fingerprint({path: state.sha256 for path, state in states.items()})


def to_json(states: Mapping[str, FileState]) -> dict[str, Any]:
    return {path: asdict(state) for path, state in states.items()}


def from_json(document: Mapping[str, Any]) -> dict[str, FileState]:
    return {path: FileState(**state) for path, state in document.items()}
