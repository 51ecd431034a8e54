"""The IO manager of every stage asset: the version folder is the data; Dagster keeps only a pointer to it.

An asset returns a `StageOutput` (stage, fingerprint, path). Dagster's default IO manager would pickle that
handle under ``.dagster/storage/`` and put the pickle's path in the materialization's ``path`` metadata,
overwriting the version folder the asset reported. This one writes a small JSON pointer under the output root
instead and adds no metadata, so ``path`` in the UI is the version folder ``data/<stage>/<fingerprint>/``. On load
the pointed-to version must still be complete (`ops.caching.existing_version`), so a downstream step never reads
a version that is not there.
"""

from __future__ import annotations

import json
from pathlib import Path

from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from ops.caching import StageOutput, existing_version
from ops.tables import write_text_atomic

POINTERS = ".pointers"  # folder under the output root; one JSON per (asset, partition)


class StageOutputIOManager(ConfigurableIOManager):
    output_root: str = Field(description="The storage resource's output root: versions and pointers live there.")

    def _pointer(self, asset_path: list[str], partition: str | None) -> Path:
        return Path(self.output_root).expanduser().resolve() / POINTERS / "/".join(asset_path) / f"{partition}.json"

    def handle_output(self, context: OutputContext, obj: StageOutput) -> None:
        if not isinstance(obj, StageOutput):
            raise TypeError(f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, not a StageOutput")
        pointer = self._pointer(context.asset_key.path, _partition(context))
        write_text_atomic(pointer, json.dumps({"stage": obj.stage, "fingerprint": obj.fingerprint}) + "\n")

    def load_input(self, context: InputContext) -> StageOutput:
        upstream = context.upstream_output
        if upstream is None or upstream.asset_key is None:
            raise ValueError("StageOutputIOManager only loads asset inputs")
        pointer = self._pointer(upstream.asset_key.path, _partition(context))
        if not pointer.is_file():
            raise FileNotFoundError(
                f"{upstream.asset_key.to_user_string()} has not been materialized for partition "
                f"{_partition(context)!r} under {self.output_root}; materialize it first"
            )
        reference = json.loads(pointer.read_text())
        return existing_version(Path(self.output_root), reference["stage"], reference["fingerprint"])


def _partition(context: OutputContext | InputContext) -> str:
    return context.partition_key if context.has_partition_key else "default"
