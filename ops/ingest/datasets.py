"""The data sets semid can ingest, declared by YAML files, one file per data set.

Built-in data sets live in ``datasets/*.yaml`` at the top of the repository. Your own live in any folder (or file)
named by ``$SEMID_DATASETS`` (several joined with ``:``), so they need no change to the checkout. The file name is
the data set's name (its Dagster partition). A file says::

    description: One line shown in the UI.
    format: p5                 # a reader of ops/ingest/formats.py
    folder: my-beauty-copy     # under the data root
    files:                     # the reader's file roles -> paths under the folder
      sequences: Beauty.txt
      datamaps: datamaps.json
      items: Amazon_Beauty.item
    text: amazon               # item-text template (ops/embeddings/templates.py); leave out if there is no text
    kcore: {k: 5}              # optional: this data set's default k-core
    splits: {seed: 42, train_fraction: 0.8, valid_fraction: 0.1, test_fraction: 0.1}  # optional

The registry is read once, when this module is imported (the Dagster definitions build their partitions from it).
A file that names an unknown format, a role its reader does not take, or a template that does not exist fails the
load with an error naming the file and the field. Missing raw files are found when the data set is ingested.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ops.embeddings.templates import TEMPLATES
from ops.ingest.config import KCoreConfig, SplitConfig
from ops.ingest.formats import FORMATS, Format
from ops.ingest.result import ReaderResult

BUILTIN_DATASETS = Path(__file__).resolve().parents[2] / "datasets"
USER_DATASETS_ENV = "SEMID_DATASETS"
DEFAULT_DATASET = "amazon2014-beauty"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")  # a partition key a user can type and a URL can carry


class DatasetFileError(ValueError):
    """A data-set YAML file that cannot be used; the message names the file and the field."""

    def __init__(self, file: Path | None, field: str, reason: str) -> None:
        self.file, self.field, self.reason = file, field, reason
        super().__init__(f"{file or '<no file>'}: field `{field}`: {reason}")


class NoItemTextError(ValueError):
    """The data set declares no item text, so nothing that embeds item text (Semantic IDs) can run on it."""


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one data set: ``format.reader(**{role: data_root / folder / file})``, plus its stage defaults."""

    name: str
    format: Format
    folder: str  # folder under the data root
    files: Mapping[str, str]  # reader argument -> file path relative to the folder
    text: str | None  # item-text template name; None: the data set has no item text
    description: str = ""
    kcore: KCoreConfig = field(default_factory=KCoreConfig)  # this data set's default k-core
    splits: SplitConfig = field(default_factory=SplitConfig)  # this data set's default random split
    source: Path | None = None  # the YAML file that declared it (named in errors)

    @property
    def identity(self) -> dict[str, Any]:
        """What the normalized tables depend on: name, format and files (not text, description or stage defaults,
        which enter the fingerprints of the stages that use them)."""
        return {"name": self.name, "format": self.format.name, "folder": self.folder, "files": dict(self.files)}

    @property
    def text_template(self) -> str:
        """The item-text template. Raises `NoItemTextError` for a data set without text: every caller embeds text."""
        if self.text is None:
            raise NoItemTextError(
                f"data set {self.name!r} has no item text ({self.source or 'its declaration'} names no `text`): "
                "Semantic IDs are built from item-text embeddings, so the embedding, tokenizer and Semantic-ID "
                "stages cannot run on it. The ID-based stages (ingest, k-core, splits) do."
            )
        return self.text

    def where(self, role: str) -> str:
        """Where a file role is declared, for error messages: ``files.items in datasets/x.yaml``."""
        return f"files.{role} in {self.source}" if self.source else f"files.{role}"

    def paths(self, data_root: Path) -> dict[str, Path]:
        return {role: Path(data_root) / self.folder / name for role, name in self.files.items()}

    def read(self, data_root: Path) -> ReaderResult:
        return self.format.reader(**self.paths(data_root))


class _KCoreFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: int = KCoreConfig.k


class _SplitFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = SplitConfig.seed
    train_fraction: float = SplitConfig.train_fraction
    valid_fraction: float = SplitConfig.valid_fraction
    test_fraction: float = SplitConfig.test_fraction


class _DatasetFile(BaseModel):
    """The fields of a data-set YAML file (unknown keys are errors, so a typo is never silently ignored)."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    format: str
    folder: str
    files: dict[str, str]
    text: str | None = None
    kcore: _KCoreFields = _KCoreFields()
    splits: _SplitFields = _SplitFields()


def load_dataset_file(path: Path) -> DatasetSpec:
    """The data set a YAML file declares; `DatasetFileError` naming the file and field when it is not usable."""
    path = Path(path)
    name = path.stem
    if not _NAME.fullmatch(name):
        raise DatasetFileError(path, "<file name>", f"{name!r} is not a data-set name: use a-z, 0-9, '.', '_', '-'")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise DatasetFileError(path, "<yaml>", f"not valid YAML: {error}") from None
    try:
        fields = _DatasetFile.model_validate(document)
    except ValidationError as error:
        problems = [(".".join(map(str, e["loc"])) or "<document>", e["msg"]) for e in error.errors()]
        also = "".join(f"; also `{where}`: {message}" for where, message in problems[1:])
        raise DatasetFileError(path, problems[0][0], problems[0][1] + also) from None
    format_ = FORMATS.get(fields.format)
    if format_ is None:
        raise DatasetFileError(path, "format", f"unknown format {fields.format!r}; known: {', '.join(FORMATS)}")
    _check_files(path, fields, format_)
    if fields.text is not None:
        if fields.text not in TEMPLATES:
            raise DatasetFileError(path, "text", f"unknown template {fields.text!r}; known: {', '.join(TEMPLATES)}")
        if not set(format_.text_roles) & set(fields.files):
            raise DatasetFileError(
                path, "text", f"format {format_.name!r} reads item text from {' or '.join(format_.text_roles)}, "
                "which `files` does not name: leave `text` out, or add that file"
            )  # fmt: skip
    try:
        kcore = KCoreConfig(**fields.kcore.model_dump())
    except ValueError as error:
        raise DatasetFileError(path, "kcore", str(error)) from None
    try:
        splits = SplitConfig(**fields.splits.model_dump())
    except ValueError as error:
        raise DatasetFileError(path, "splits", str(error)) from None
    return DatasetSpec(
        name, format_, fields.folder, dict(fields.files), fields.text, fields.description, kcore, splits, path
    )


def _check_files(path: Path, fields: _DatasetFile, format_: Format) -> None:
    _check_relative(path, "folder", fields.folder)
    if not fields.files:
        raise DatasetFileError(path, "files", f"names no file; format {format_.name!r} takes {_roles(format_)}")
    for role, file in fields.files.items():
        if role not in format_.roles:
            raise DatasetFileError(
                path, f"files.{role}", f"format {format_.name!r} takes no {role!r} file; it takes {_roles(format_)}"
            )
        _check_relative(path, f"files.{role}", file)
    missing = [role for role, required in format_.roles.items() if required and role not in fields.files]
    if missing:
        raise DatasetFileError(
            path, f"files.{missing[0]}", f"format {format_.name!r} needs this file; it takes {_roles(format_)}"
        )


def _check_relative(path: Path, where: str, value: str) -> None:
    """Paths stay under the data root: no absolute path, no ``..``, so a data set is found wherever the root is."""
    parts = PurePosixPath(value).parts
    if not value or PurePosixPath(value).is_absolute() or ".." in parts:
        raise DatasetFileError(path, where, f"{value!r} must be a relative path without '..'")


def _roles(format_: Format) -> str:
    return ", ".join(f"{role} ({'required' if required else 'optional'})" for role, required in format_.roles.items())


def load_registry(sources: Iterable[Path]) -> dict[str, DatasetSpec]:
    """Every data set declared by the YAML files in ``sources`` (folders of ``*.yaml``, or single files).

    A name declared twice is an error naming both files: one silently shadowing the other would ingest
    different bytes under the same partition.
    """
    registry: dict[str, DatasetSpec] = {}
    for source in map(Path, sources):
        if not source.exists():
            raise DatasetFileError(source, "<path>", f"data-set folder or file not found (from ${USER_DATASETS_ENV}?)")
        for file in sorted(source.glob("*.yaml")) if source.is_dir() else [source]:
            spec = load_dataset_file(file)
            if spec.name in registry:
                raise DatasetFileError(
                    file, "<file name>", f"{spec.name!r} is also declared by {registry[spec.name].source}"
                )
            registry[spec.name] = spec
    return registry


def registry_sources(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The built-in ``datasets/`` folder, then each entry of ``$SEMID_DATASETS`` (``:``-separated)."""
    user = [Path(entry).expanduser() for entry in environ.get(USER_DATASETS_ENV, "").split(os.pathsep) if entry]
    return [BUILTIN_DATASETS, *user]


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(load_registry(registry_sources()))


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def main(argv: list[str]) -> int:
    """``python -m ops.ingest.datasets [NAME]``: list the registered data sets, or exit 1 unless NAME is one.

    Cheap (no Dagster import), so a command line can refuse a misspelled data set before it starts a run.
    """
    if argv:
        if argv[0] not in DATASETS:
            print(f"unknown data set {argv[0]!r}; known: {', '.join(DATASETS)}", file=sys.stderr)
            return 1
        return 0
    for spec in DATASETS.values():
        print(f"{spec.name:40} {spec.format.name:11} {spec.text or '(no text)':10} {spec.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
