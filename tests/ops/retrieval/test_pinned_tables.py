"""The retrieval benchmark on a pinned table (`python -m bench.retrieval --parts decoder:@<version> --table-root
...`): how LAMIA and LLM2Vec tables, built by their own benchmarks under another output root and with another
shape than 3x256, reach the decoder-only model."""

from __future__ import annotations

import pytest

from bench.retrieval import Job, PartOptions, Setting, run_job
from ops.pipeline import prepare, semantic_id_version
from ops.quantizers.kinds import scaled_config
from tests.conftest import shared_data_root

DATASET = "amazon2014-beauty-10core-ratings"  # 733 items: enough for 256 codes a level, seconds to embed


def test_a_pinned_table_of_another_root_and_shape_trains_the_decoder(shared_data, tmp_path):
    shared_data("amazon2014-beauty-5core")
    table_root = tmp_path / "tables"
    prepared = prepare(DATASET, shared_data_root(), table_root)
    _, table = semantic_id_version(table_root, prepared.embeddings, scaled_config("rqkmeans", 2, {}))
    setting = Setting.on(DATASET, 0, 0.05, output_root=tmp_path / "models", table_root=table_root)

    [record], _ = run_job(setting, PartOptions(), Job(f"decoder:@{table.fingerprint}", 0))

    assert record["model"] == f"semid decoder-only (rqkmeans 2x256, table {table.fingerprint})"
    assert record["sid_table"] == table.fingerprint
    assert record["invalid_items"] == 0 and record["eval_users"] > 0
    assert not (tmp_path / "models" / "semantic_ids").exists()  # read where it was pinned, not rebuilt here


def test_an_unknown_pinned_table_names_the_versions_that_exist(shared_data, tmp_path):
    shared_data("amazon2014-beauty-5core")
    setting = Setting.on(DATASET, 0, 0.05, output_root=tmp_path)
    setting.table("rqkmeans")
    with pytest.raises(FileNotFoundError, match="no semantic_ids version .0123456789abcdef") as error:
        run_job(setting, PartOptions(), Job("decoder:@0123456789abcdef", 0))
    assert setting.table("rqkmeans").fingerprint in str(error.value)
