"""Embedding throughput on the 12,101 Amazon-2014 Beauty item texts, rendered with the Amazon template.

One run measures, with the same torch threads throughout:

1. our MiniLM (`TransformerEmbedder`) against sentence-transformers' ``SentenceTransformer.encode`` on all texts,
   same model files, same batch size (goal: ours >= 1.2x, from token-length sorting that leaves almost no
   padding, one tokenizer call for all texts, and ``torch.inference_mode``);
2. SmolLM2-135M with mean pooling, last-token pooling, and LLM2Vec-style bidirectional mean pooling;
3. achieved GFLOP/s against this machine's measured ``torch.matmul`` GFLOP/s. FLOPs count real tokens only:
   2 x (weights of the linear layers) per token, plus attention, 4 x hidden x (keys attended) per token per layer.

    HF_HUB_OFFLINE=1 PYTHONPATH=. python -m bench.embed      # writes bench/results/embed.json

(``-m``, not ``python bench/embed.py``: run as a script, ``bench/`` would lead ``sys.path`` and any
``bench/<name>.py`` named like a package, e.g. ``tokenizers``, would shadow that package.)

Needs the SmolLM2 cache (``python -m ops.embeddings.model_cache``) and sentence-transformers (a dev dependency).
"""

from __future__ import annotations

import argparse
import ast
import csv
import html
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import torch

from ops.device import cpu_placement, placement
from ops.embeddings.batching import length_sorted_batches
from ops.embeddings.config import MINILM_CONFIG, SMOLLM2, EmbedderConfig, Pooling
from ops.embeddings.encoder import TransformerEmbedder
from ops.embeddings.models import resolve_model
from ops.embeddings.templates import AMAZON, render_texts
from ops.ingest.schema import ITEMS

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("SEMID_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
BEAUTY_ITEMS = DATA_ROOT / "amazon2014-beauty-5core" / "Amazon_Beauty.item"


def load_beauty_items(path: Path) -> pl.DataFrame:
    """RecBole ``Amazon_Beauty.item`` -> a normalized items frame (the fields the Amazon template reads).

    The one place the bench reads text: swap it for ``pl.read_parquet`` of the ingested items table later.
    Quote-aware TSV (3 titles hold a TAB or newline inside quotes); categories are a comma-joined list of quoted
    names; HTML entities are decoded as the ingest step does.
    """
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    column = {name.split(":")[0]: i for i, name in enumerate(rows[0])}

    def text(row: list[str], name: str) -> str | None:
        return html.unescape(row[column[name]]) or None

    records = [
        {
            "item_id": row[column["item_id"]],
            "title": text(row, "title"),
            "description": None,
            "brand": text(row, "brand"),
            "categories": [html.unescape(c) for c in ast.literal_eval(f"[{row[column['categories']]}]")],
            "price": float(row[column["price"]]) if row[column["price"]] else None,
            "attributes": "{}",
            "has_text": True,
            "source": "recbole",
        }
        for row in rows[1:]
    ]
    return pl.DataFrame(records, schema=ITEMS)


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float  # CPU seconds of this process, all threads

    @property
    def cpu_share(self) -> float:
        """Fraction of the torch threads' wall time this process really ran: below 1 when others share the CPUs."""
        return self.cpu_s / (self.wall_s * torch.get_num_threads())


def timed(run: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 ``torch.matmul`` rate of ``repeats`` tries: the roofline the models are compared with (the
    best try is the one least disturbed by other processes)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = min(timed(lambda: torch.matmul(a, b)).wall_s for _ in range(repeats))
    return 2 * n**3 / best / 1e9


@dataclass(frozen=True)
class Work:
    real_tokens: int  # tokens of the texts themselves
    padded_tokens: int  # tokens the forward passes actually process (with length-sorted batches)
    gflop: float  # useful work on real tokens only


def work(embedder: TransformerEmbedder, texts: Sequence[str], causal: bool) -> Work:
    lengths = np.array([len(ids) for ids in embedder.tokenize(texts)], dtype=np.int64)
    batches = length_sorted_batches(lengths.tolist(), embedder.config.batch_size)
    linear = sum(
        m.weight.numel()
        for name, m in embedder.model.named_modules()
        if isinstance(m, torch.nn.Linear) and "pooler" not in name  # BERT's pooler runs on one token, unused
    )
    config = embedder.model.config
    keys_seen = lengths * (lengths + 1) / 2 if causal else lengths.astype(np.float64) ** 2  # per text, summed
    flops = 2 * linear * lengths.sum() + 4 * config.num_hidden_layers * config.hidden_size * keys_seen.sum()
    padded = sum(len(batch) * int(lengths[batch].max()) for batch in batches)
    return Work(int(lengths.sum()), padded, float(flops) / 1e9)


def timed_encode(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[Timing, np.ndarray]:
    """One encode of ``texts`` after a short warm-up (first calls pay one-off allocation costs)."""
    encode(texts[:64])
    vectors: list[np.ndarray] = []
    return timed(lambda: vectors.append(encode(texts))), vectors[0]


def bench_minilm(texts: list[str], batch_size: int, repeats: int) -> dict[str, object]:
    from sentence_transformers import SentenceTransformer

    ours = TransformerEmbedder(replace(MINILM_CONFIG, batch_size=batch_size), cpu_placement())
    reference = SentenceTransformer(resolve_model(MINILM_CONFIG.model), device="cpu")
    reference.max_seq_length = MINILM_CONFIG.max_length

    def st_encode(batch: list[str]) -> np.ndarray:
        return reference.encode(batch, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    st_times, our_times = [], []
    for _ in range(repeats):  # interleaved, so other processes' load hits both alike; the best of each is kept
        timing, st_vectors = timed_encode(st_encode, texts)
        st_times.append(timing)
        timing, our_vectors = timed_encode(ours.encode, texts)
        our_times.append(timing)
    st, us = min(st_times, key=lambda t: t.wall_s), min(our_times, key=lambda t: t.wall_s)
    load = work(ours, texts, causal=False)
    return {
        "n_texts": len(texts),
        "batch_size": batch_size,
        "sentence_transformers_items_per_s": len(texts) / st.wall_s,
        "ours_items_per_s": len(texts) / us.wall_s,
        "speedup": st.wall_s / us.wall_s,
        "all_wall_s": {"sentence_transformers": [t.wall_s for t in st_times], "ours": [t.wall_s for t in our_times]},
        "cpu_share": {"sentence_transformers": st.cpu_share, "ours": us.cpu_share},
        "max_abs_diff_vs_sentence_transformers": float(np.abs(st_vectors - our_vectors).max()),
        "real_tokens": load.real_tokens,
        "padding_overhead": load.padded_tokens / load.real_tokens - 1,
        "gflop_per_s": load.gflop / us.wall_s,
    }


def bench_smollm2(texts: list[str], batch_size: int, repeats: int) -> list[dict[str, object]]:
    modes = {
        "mean": (Pooling.MEAN, False),
        "last-token": (Pooling.LAST, False),
        "bidirectional mean": (Pooling.MEAN, True),
    }
    embedders = {
        label: TransformerEmbedder(
            EmbedderConfig(model=SMOLLM2, pooling=pooling, bidirectional=bidirectional, batch_size=batch_size),
            cpu_placement(),
        )
        for label, (pooling, bidirectional) in modes.items()
    }
    times: dict[str, list[Timing]] = {label: [] for label in modes}
    for _ in range(repeats):  # modes interleaved, as for MiniLM; the best of each is kept
        for label, embedder in embedders.items():
            times[label].append(timed_encode(embedder.encode, texts)[0])
    results = []
    for label, embedder in embedders.items():
        best = min(times[label], key=lambda t: t.wall_s)
        load = work(embedder, texts, causal=not embedder.config.bidirectional)
        results.append(
            {
                "mode": label,
                "pooling": str(embedder.config.pooling),
                "bidirectional": embedder.config.bidirectional,
                "n_texts": len(texts),
                "batch_size": batch_size,
                "items_per_s": len(texts) / best.wall_s,
                "all_wall_s": [t.wall_s for t in times[label]],
                "cpu_share": best.cpu_share,
                "real_tokens": load.real_tokens,
                "padding_overhead": load.padded_tokens / load.real_tokens - 1,
                "gflop_per_s": load.gflop / best.wall_s,
            }
        )
    return results


def machine() -> dict[str, object]:
    import sentence_transformers
    import transformers

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cpus_available": placement().threads,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "platform": platform.platform(),
    }


def print_table(report: dict[str, object]) -> None:
    minilm, peak = report["minilm"], report["matmul_gflop_per_s"]
    print(f"\nfloat32 matmul peak, {report['machine']['torch_threads']} threads: {peak:.0f} GFLOP/s")
    header = ("model / mode", "texts", "items/s", "GFLOP/s", "of peak", "padding", "CPU share")
    print(f"{header[0]:<38}" + "".join(f"{h:>10}" for h in header[1:]))
    st_share = minilm["cpu_share"]["sentence_transformers"]
    print(
        f"{'MiniLM, sentence-transformers':<38}{minilm['n_texts']:>10}"
        f"{minilm['sentence_transformers_items_per_s']:>10.1f}{'':>30}{st_share:>10.0%}"
    )
    ours = {**minilm, "items_per_s": minilm["ours_items_per_s"], "cpu_share": minilm["cpu_share"]["ours"]}
    for label, r in [("MiniLM, ours", ours)] + [(f"SmolLM2-135M, {r['mode']}", r) for r in report["smollm2"]]:
        print(
            f"{label:<38}{r['n_texts']:>10}{r['items_per_s']:>10.1f}{r['gflop_per_s']:>10.1f}"
            f"{r['fraction_of_matmul_peak']:>10.0%}{r['padding_overhead']:>10.1%}{r['cpu_share']:>10.0%}"
        )
    print(
        f"MiniLM speed-up over sentence-transformers: {minilm['speedup']:.2f}x "
        f"(max |difference| {minilm['max_abs_diff_vs_sentence_transformers']:.1e})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=Path, default=BEAUTY_ITEMS, help="RecBole Amazon_Beauty.item")
    parser.add_argument("--n-llm", type=int, default=2000, help="texts for each SmolLM2 mode")
    parser.add_argument("--minilm-batch-size", type=int, default=MINILM_CONFIG.batch_size)
    parser.add_argument("--llm-batch-size", type=int, default=EmbedderConfig().batch_size)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved timings per model; the best is kept")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "embed.json")
    args = parser.parse_args(argv)

    placement()  # sets torch threads once, before any timing
    texts = [t for t in render_texts(load_beauty_items(args.items), AMAZON) if t]
    load_before, peak_before = os.getloadavg(), matmul_gflops()
    minilm = bench_minilm(texts, args.minilm_batch_size, args.repeats)
    smollm2 = bench_smollm2(texts[: args.n_llm], args.llm_batch_size, args.repeats)
    load_after, peak_after = os.getloadavg(), matmul_gflops()
    peak = max(peak_before, peak_after)  # the less disturbed of the two measurements
    for result in [minilm, *smollm2]:
        result["fraction_of_matmul_peak"] = result["gflop_per_s"] / peak
    report = {
        "command": " ".join(["HF_HUB_OFFLINE=1 PYTHONPATH=. python -m bench.embed", *(argv or sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_1_5_15": {"before": load_before, "after": load_after},
        "data": {"items": str(args.items.name), "n_texts": len(texts), "template": AMAZON.identity},
        "matmul_gflop_per_s": peak,
        "matmul_gflop_per_s_before_after": [peak_before, peak_after],
        "flop_count": "real tokens only: 2 x linear-layer weights per token + 4 x layers x hidden x keys attended",
        "minilm": minilm,
        "smollm2": smollm2,
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
