"""The LLM as recommender on Amazon 2014 Beauty (issue 15): SmolLM2-135M with the table's Semantic-ID tokens and
LoRA, with and without the text-to-item alignment phase, next to the decoder-only recommender trained from
scratch, all on the same seeded user subset, the same wall-clock training budget per model (validations
included) and the same 3x256 Semantic-ID table; evaluation on every test user of the subset with the same
trie-constrained beam search (top 20), beside the most-popular list.

Parts, any number per invocation; every trained model is a cached stage, so a finished part returns at once:

    most_popular            train-set popularity, the same list for every user
    decoder:<kind>          the decoder-only recommender from scratch on the <kind> 3x256 table (bench.retrieval's)
    llm:<kind>              the LLM recommender on that table; options, each after a "+":
                            +align   phase 1 next-item + alignment (title <-> Semantic ID), phase 2 next-item alone
                            +titles  each history item's title after its Semantic-ID tokens in the prompt
                            +codes   the new tokens' rows start from the tokenizer's code vectors, not the mean

Each invocation merges what it ran into bench/results/<name>.json under ``figures.parts`` (one record per part
and seed: budget, users, epochs, next-item targets seen and per second, Recall/NDCG@5/10/20, invalid items,
decoding users/s, versions, command, date) and rebuilds ``figures.rows`` (mean and std over seeds), as
bench/retrieval.py does.

    python -m bench.llm_rec            # = make bench-llm-rec: 1,000 users, 20 minutes per model, seed 0
    python -m bench.llm_rec --parts llm:rqvae+codes llm:rqvae+titles     # the new-row and title options
    python -m bench.llm_rec --parts llm:rqvae+align --users 50 --budget-minutes 0.33 --name llm_rec-smoke
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see ops/__init__.py

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bench.common import command_line, print_table, write_result
from bench.retrieval import (
    BEAMS,
    METRICS,
    SCALE,
    Setting,
    epoch_printer,
    fitted_summary,
    metric_values,
    most_popular,
    part_entry,
    previous_figures,
    sid_model,
    summary,
)
from ops.retrieval.llm_recommender import LLMRecommenderConfig
from ops.retrieval.llm_tokens import NewRows
from ops.retrieval.stage import evaluate_llm_recommender_stage, train_llm_recommender_stage

DEFAULT_PARTS = ("most_popular", "decoder:rqvae", "llm:rqvae", "llm:rqvae+align")
DEFAULT_USERS = 1000  # a seeded sample of Beauty's 22,363 users: ~5,600 next-item targets per epoch
DEFAULT_BUDGET_MINUTES = 20.0  # per trained model, on the whole machine
LLM_OPTIONS: dict[str, Callable[[LLMRecommenderConfig], LLMRecommenderConfig]] = {
    "align": lambda c: replace(c, alignment=True),
    "titles": lambda c: replace(c, prompt=replace(c.prompt, titles=True)),
    "codes": lambda c: replace(c, new_rows=NewRows.CODES),
}
NOTES = (
    "Every model trains for the same wall-clock budget on the same user subset and table; the budget counts its "
    "validations too (the decoder validates on up to 2,000 users per epoch, the LLM on 500: each is a prefill "
    "through 135M parameters). targets_per_s counts next-item targets (phase 1 of +align also counts two samples "
    "per aligned item). Nothing in the code path is CPU-specific: on a GPU placement() picks CUDA and bf16 autocast "
    "(LoRA's dropout then stays torch's; the CPU swaps in a cheaper mask)."
)


def llm(setting: Setting, spec: str, seed: int, model: str) -> dict[str, Any]:
    """Train (cached) and evaluate the LLM recommender on a table: ``spec`` is its kind, then options after "+"."""
    kind, *options = spec.split("+")
    table = setting.table(kind)
    defaults = replace(LLMRecommenderConfig(), model=model)
    config = replace(defaults, train=replace(defaults.train, max_train_seconds=setting.budget, seed=seed))
    for option in options:
        config = LLM_OPTIONS[option](config)  # KeyError: an unknown option
    print(
        f"LLM recommender on {kind} table {table.fingerprint}, seed {seed}: at most {setting.budget:.0f} s", flush=True
    )
    items = setting.prepared.kcore
    trained = train_llm_recommender_stage(
        setting.output_root, setting.splits, table, config, items, epoch_printer(f"llm {spec} seed {seed}")
    )
    evaluation = evaluate_llm_recommender_stage(setting.output_root, trained, setting.splits, table, items, beams=BEAMS)
    m, e = trained.manifest, evaluation.manifest
    return {
        "model": f"semid LLM recommender ({', '.join([model, f'{kind} {SCALE}x256', *options])})",
        **metric_values(e["test"]),
        **fitted_summary(trained),
        "invalid_items": e["invalid_items"],
        "users_short_of_20": e["users_short_of_k"],
        "eval_users": e["n_users"],
        "decode_users_per_s": e["decode_users_per_s"],
        "most_popular_recall@10": e["most_popular"]["recall@10"],
        "phases": m["phases"],
        "trainable_parameters": m["trainable_parameters"],
        "sid_table": table.fingerprint,
        "eval_version": evaluation.fingerprint,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=list(DEFAULT_PARTS), help="most_popular, decoder:<kind>, llm:...")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds of every trained part")
    parser.add_argument("--budget-minutes", type=float, default=DEFAULT_BUDGET_MINUTES, help="per trained model")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="a seeded sample of this many users (0 = all)")
    parser.add_argument("--model", default=LLMRecommenderConfig.model, help="the LLM: a local-cache name or folder")
    parser.add_argument("--name", default="llm_rec", help="results file bench/results/<name>.json")
    args = parser.parse_args()

    setting = Setting.on_beauty(args.users, args.budget_minutes)
    figures = previous_figures(args.name)
    command = command_line()
    for part in args.parts:
        name, _, spec = part.partition(":")
        for seed in args.seeds if name in ("decoder", "llm") else [0]:
            start = time.perf_counter()
            if name == "most_popular":
                record = most_popular(setting)
            elif name == "decoder":
                record = sid_model(setting, "decoder", spec, seed)
            elif name == "llm":
                record = llm(setting, spec, seed, args.model)
            else:
                raise SystemExit(f"unknown part {part!r}")
            seconds = time.perf_counter() - start
            figures["parts"].update(part_entry(record, part, seed, setting, args.users, seconds, command))
            print_table([{k: v for k, v in record.items() if k != "phases"}])
            figures["rows"] = summary(figures["parts"])
            write_result(args.name, figures, NOTES)  # after every part: an interrupted run keeps what it finished
    print("\nall parts")
    print_table(
        [
            {k: row.get(k) for k in ("model", "seeds", "budget_seconds", "users", *METRICS[:4])}
            for row in figures["rows"]
        ]
    )


if __name__ == "__main__":
    main()
