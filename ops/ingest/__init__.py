"""Ingestion: raw public data sets -> normalized items / users / interactions tables."""
