"""Choice fields of the launchpad: a ``Literal`` built from the registry the computation uses.

Dagster turns a ``Literal`` field into an enum of its config schema, so a misspelled tokenizer kind, backbone or
pooling is refused when the run is launched (in the UI's launchpad or on the CLI), not minutes into it, and the
launchpad offers the valid values. The values come from the registries themselves, so adding a tokenizer or a
backbone adds its choice.
"""

from collections.abc import Iterable
from typing import Any, Literal


def one_of(values: Iterable[str]) -> Any:
    """``Literal[v1, v2, ...]`` of ``values`` as plain strings (enum members serialize as their values), sorted."""
    return Literal[tuple(sorted(str(value) for value in values))]  # type: ignore[valid-type]
