"""Diagnostics of codes and semantic representations, as plain functions of arrays (MoC paper, section 5.2).

`usage`: codebook usage and perplexity per level; `collisions`: items sharing a code tuple; `nmi`: normalized
mutual information of codes or K-Means clusters against labels; `spectrum`: singular spectrum; `correlation`:
Pearson correlation between per-codebook representations.
"""
