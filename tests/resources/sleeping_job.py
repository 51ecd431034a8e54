"""A one-asset job that opens its MLflow run and then sleeps: the run a test kills with ``kill -9``."""

import os
import time
from pathlib import Path

from dagster import AssetExecutionContext, Definitions, asset, define_asset_job, in_process_executor

from assets.publishing import tracked_run
from resources import MlflowTracking


@asset
def sleeping(context: AssetExecutionContext, mlflow: MlflowTracking) -> None:
    with tracked_run(context, mlflow, "sleeping", {}):
        Path(os.environ["SLEEPING_MARKER"]).write_text(str(os.getpid()))
        time.sleep(600)


defs = Definitions(
    assets=[sleeping],
    jobs=[define_asset_job("sleep", selection=[sleeping], executor_def=in_process_executor)],
    resources={
        "mlflow": MlflowTracking(
            tracking_uri=os.environ["SLEEPING_TRACKING_URI"], artifact_root=os.environ["SLEEPING_ARTIFACTS"]
        )
    },
)
