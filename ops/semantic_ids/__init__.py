"""Semantic-ID tables: codes per item plus a TIGER-style collision suffix, as immutable versioned Parquet.

`table` builds and extends the table (pure functions of ids and codes); `stage` trains nothing, it encodes
items with a frozen tokenizer checkpoint and writes versions through the caching contract; `reindexing` decides
when a changed catalogue may keep the previous tokenizer; `changes` counts the items whose ID moved between two
versions (Semantic-ID stability).
"""
