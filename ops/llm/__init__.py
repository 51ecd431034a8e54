"""Decoder LLMs adapted to the catalogue with LoRA: one model builder, one trainer, the tasks that use them.

`lora` builds a ``transformers`` causal LM with ``peft`` LoRA (and trainable rows for new tokens) and saves /
rebuilds it from one checkpoint file; `trainer.train` is the one loop (gradient accumulation, bf16 autocast,
wall-clock budget, checkpoints, per-step loss parts). A task is a collate function plus a loss function:
`mntp` and `simcse` make up LLM2Vec (`llm2vec`), `lamia` learns item palettes, and the LLM recommender
reuses the same two pieces.
"""
