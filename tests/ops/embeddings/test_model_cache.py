"""The prepared SmolLM2 cache: idempotent preparation, a sane tokenizer, sane dequantized weights."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ops.embeddings import model_cache
from ops.embeddings.config import SMOLLM2
from ops.embeddings.models import ModelNotPreparedError, resolve_model


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        model_cache.main(["--help"])
    assert exit_info.value.code == 0 and "--cache-dir" in capsys.readouterr().out


def test_cache_root_follows_env_and_missing_model_says_how_to_prepare(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path))
    assert model_cache.model_cache_root() == tmp_path.resolve()
    with pytest.raises(ModelNotPreparedError, match="python -m ops.embeddings.model_cache"):
        resolve_model(SMOLLM2)


def test_prepare_again_is_a_no_op(smollm2_ready: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = smollm2_ready / "model.safetensors"
    before = weights.stat().st_mtime_ns
    start = time.perf_counter()
    assert model_cache.main([]) == 0
    assert time.perf_counter() - start < 1.0 and "already prepared" in capsys.readouterr().out
    assert weights.stat().st_mtime_ns == before


def test_tokenizer_round_trips_and_has_smollm2_specials(smollm2_ready: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_ready)
    text = "Crème brûlée lip balm, 0.15 oz — “Women's”; L'Oréal; Beauty, Skin Care"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text and len(ids) < len(text) / 2  # lossless, and real subwords
    assert tokenizer.convert_ids_to_tokens(tokenizer("2024")["input_ids"]) == [
        "2",
        "0",
        "2",
        "4",
    ]  # SmolLM2 splits digits
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<|im_start|>", "<|im_end|>") and len(tokenizer) == 49152


def test_dequantized_model_answers_sensibly(smollm2_ready: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_ready)
    model = AutoModelForCausalLM.from_pretrained(smollm2_ready).eval()
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        answer = model.generate(**prompt, max_new_tokens=10, do_sample=False)
    assert "Paris" in tokenizer.decode(answer[0, prompt["input_ids"].shape[1] :])
