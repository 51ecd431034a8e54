"""CTR training as a 2-process gloo DDP job (torchrun) matches one process on the same global batch."""

from __future__ import annotations

import json

import pytest
import torch

from ops.compute.ctr_ddp import ddp_train_ctr_stage, epoch_log
from ops.ctr.stage import CHECKPOINT, HISTORY, CTRConfig, load_checkpoint, train_ctr_stage


def test_two_process_ddp_matches_one_process(gift_cards, tmp_path):
    config = CTRConfig.test("dcnv2")  # no dropout, no batch norm: nothing but float order may differ between runs
    prepared = gift_cards.prepared
    single = train_ctr_stage(tmp_path, gift_cards.samples, prepared.kcore, gift_cards.sid_table, config)
    lines: list[str] = []
    ddp = ddp_train_ctr_stage(
        tmp_path, gift_cards.samples, prepared.kcore, gift_cards.sid_table, config, nproc=2, on_line=lines.append
    )
    assert ddp.manifest["ddp"] == {"world": 2, "backend": "gloo"} and ddp.fingerprint != single.fingerprint
    one = json.loads(single.file(HISTORY).read_text())
    two = json.loads(ddp.file(HISTORY).read_text())
    assert len(two) == len(one) == config.train.max_epochs
    for a, b in zip(one, two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["valid_auc"] == pytest.approx(a["valid_auc"], abs=1e-4)
    assert [log["epoch"] for line in lines if (log := epoch_log(line))] == [1, 2, 3]  # streamed as they ran
    assert ddp.manifest["test_auc"] == pytest.approx(single.manifest["test_auc"], abs=1e-4)
    model, loaded_config, _ = load_checkpoint(ddp.file(CHECKPOINT))  # the one-process checkpoint format
    assert loaded_config == config
    assert not any(name.startswith(("ddp.", "module.")) for name in model.state_dict())
    reference, _, _ = load_checkpoint(single.file(CHECKPOINT))
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=1e-3, atol=1e-4)
    assert ddp_train_ctr_stage(
        tmp_path, gift_cards.samples, prepared.kcore, gift_cards.sid_table, config, nproc=2
    ).cache_hit
