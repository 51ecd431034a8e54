"""Embeddings: item text -> one float32 vector per item, with an incremental per-item cache.

`embed_items` is the entry point the Dagster asset calls; `TransformerEmbedder` is the one model wrapper
(sentence encoders, causal decoders, LLM2Vec-style bidirectional decoders); `model_cache` prepares the local
model files offline.
"""
