"""All computation of semid: plain Python, polars and torch. Never imports dagster.

Importing ``ops`` (which every entry point does before torch) makes idle OpenMP threads sleep instead of
spin, unless the user chose otherwise: on a small machine shared with anything else -- a CI runner, a
laptop, two benchmarks side by side -- spinning threads starve the working ones, and we measured torch
training 5-10x slower with 2 threads on 2 loaded cores. It must be set before torch loads its OpenMP runtime.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
