"""Generative retrieval: TIGER-style seq2seq over Semantic IDs, trie-constrained beam search, SASRec baseline."""
