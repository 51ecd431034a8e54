"""The raw-file formats semid reads, by the name a data-set YAML file gives in its ``format`` field.

A format is a reader (``read_*(**{role: path})``) plus the roles that carry item text. The roles a data set must
name are the reader's parameters without a default; the others are optional files. Adding a format is one entry
here and its ``readers/<format>.py``; a data set that uses it is one YAML file (see ``datasets.py``).
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.util import find_spec
from pathlib import Path
from types import MappingProxyType

from ops.ingest.readers.amazon2014 import read_amazon2014
from ops.ingest.readers.amazon2018 import read_amazon2018
from ops.ingest.readers.amazon2023 import read_amazon2023
from ops.ingest.readers.hm import read_hm
from ops.ingest.readers.lcrec import read_lcrec
from ops.ingest.readers.mind import read_mind
from ops.ingest.readers.p5 import read_p5_sequences
from ops.ingest.readers.recbole import read_recbole
from ops.ingest.result import ReaderResult

READERS_PACKAGE = "ops.ingest.readers"


@dataclass(frozen=True)
class Format:
    """A reader and which of its file roles hold item text (titles, descriptions, ...)."""

    name: str
    reader: Callable[..., ReaderResult]
    text_roles: tuple[str, ...]  # a data set has item text only if it names one of these files

    @cached_property
    def roles(self) -> dict[str, bool]:
        """Each file role the reader takes -> whether it is required."""
        parameters = inspect.signature(self.reader).parameters.values()
        return {p.name: p.default is inspect.Parameter.empty for p in parameters}

    @cached_property
    def sources(self) -> tuple[Path, ...]:
        """The reader's module and every reader module it imports (transitively): the format's own code.

        The ingest fingerprint hashes these, not the whole readers package, so editing one format's reader
        re-ingests only the data sets in that format (and those of the formats that import it).
        """
        return tuple(sorted(_reader_modules(Path(sys.modules[self.reader.__module__].__file__))))


def _reader_modules(file: Path, seen: set[Path] | None = None) -> set[Path]:
    seen = set() if seen is None else seen
    seen.add(file.resolve())
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            spec = find_spec(name) if name.startswith(READERS_PACKAGE + ".") else None
            if spec is not None and spec.origin and Path(spec.origin).resolve() not in seen:
                _reader_modules(Path(spec.origin).resolve(), seen)
    return seen


FORMATS: Mapping[str, Format] = MappingProxyType(
    {
        format_.name: format_
        for format_ in (
            Format("p5", read_p5_sequences, ("items",)),
            Format("recbole", read_recbole, ("items",)),
            Format("amazon2014", read_amazon2014, ("meta",)),
            Format("amazon2018", read_amazon2018, ("meta",)),
            Format("amazon2023", read_amazon2023, ("meta",)),
            Format("mind", read_mind, ("news",)),
            Format("hm", read_hm, ("articles",)),
            Format("lcrec", read_lcrec, ("item_json",)),
        )
    }
)
