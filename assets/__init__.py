"""Thin Dagster assets, one module per stage: each reads its config and resources and calls one `ops` function."""
