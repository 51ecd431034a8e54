"""All computation of semid: plain Python, polars and torch. Never imports dagster."""
