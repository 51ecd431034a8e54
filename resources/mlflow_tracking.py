"""A small MLflow resource: one run per materialization, on a local SQLite backend, an experiment per stage.

An experiment per stage (`semid/tokenizer`, `semid/ctr_model`, ...) rather than per data set: the runs a user
compares side by side are one stage's (which tokenizer gives the best CTR model), and within a stage every run has
the same params and metrics, so the runs table has that stage's columns only, not the union of every stage's (92 in
one shared experiment). Data set and tokenizer are tags (`dataset`, `tokenizer`, `stage`) to filter on, e.g.
``tags.dataset = 'amazon2014-beauty' and tags.tokenizer = 'moc'``. Experiments are created as model-training
experiments (tag `mlflow.experimentKind`), and run links open MLflow's model-training view, not its GenAI one.

Written instead of `dagster-mlflow`, which pins an older dagster. It uses `MlflowClient` (no global fluent
state), so concurrent assets never share an active run by accident. Two first runs at once would race to create
the SQLite schema and the experiment; both happen under a lock file beside the database. When a run starts, runs
that were killed before they could end (see `resources.run_liveness`) are marked failed in Dagster and KILLED in
MLflow, so neither UI shows a dead run as running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from ops.locks import file_lock
from resources.run_liveness import fail_dead_runs, finished
from resources.storage import default_output_root

PARAM_VALUE_LIMIT = 6000  # MLflow refuses longer parameter values
DAGSTER_RUN_TAG = "dagster_run_id"
# MLflow 3 opens an experiment in its GenAI view unless the experiment's kind or the URL says model training
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
TRAINING_VIEW = "workflowType=machine_learning"


def default_tracking_uri() -> str:
    return f"sqlite:///{Path(default_output_root()).resolve() / 'mlflow' / 'mlflow.db'}"


def default_artifact_root() -> str:
    return str(Path(default_output_root()).resolve() / "mlflow" / "artifacts")


class TrackedRun:
    """The handle a stage logs into; thin on purpose, so ops never depend on MLflow."""

    def __init__(self, client: Any, run_id: str, url: str):
        self._client = client
        self.run_id = run_id
        self.url = url

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log all ``metrics`` in one batch (one database round trip, not one per metric)."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        batch = [Metric(key, float(value), timestamp, step) for key, value in metrics.items()]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_tag(self.run_id, key, str(value))


class MlflowTracking(ConfigurableResource):
    """MLflow tracking with a SQLite backend under the output root (overridable URI)."""

    tracking_uri: str = Field(description="MLflow tracking URI; SQLite by default (file stores are refused).")
    artifact_root: str = Field(description="Where new experiments store artifacts.")
    experiment: str = Field(
        default="semid", description="Prefix of the experiments: runs of stage S go to `<experiment>/S`."
    )
    ui_url: str = Field(default="http://127.0.0.1:5000", description="Base URL of the MLflow UI, for run links.")

    def experiment_name(self, stage: str) -> str:
        return f"{self.experiment}/{stage}"

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Before a step runs: runs killed earlier are marked failed (Dagster) and KILLED (MLflow), in every
        experiment of this prefix."""
        if context.instance is None:
            return
        fail_dead_runs(context.instance)
        with self._locked_client() as client:
            experiments = self._own_experiments(client)
            if not experiments:
                return
            dangling = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000)
            for run in dangling:
                dagster_run = run.data.tags.get(DAGSTER_RUN_TAG)
                if dagster_run and finished(context.instance, dagster_run):
                    client.set_terminated(run.info.run_id, "KILLED")

    def _own_experiments(self, client: Any) -> list[str]:
        """Ids of this prefix's experiments (and of an older single experiment of that name)."""
        candidates = client.search_experiments(filter_string=f"name LIKE '{self.experiment}%'", max_results=1000)
        return [
            e.experiment_id
            for e in candidates
            if e.name == self.experiment or e.name.startswith(self.experiment_name(""))
        ]

    @contextmanager
    def _locked_client(self) -> Iterator[Any]:
        """A client, with the database's set-up (schema, migrations) done once under a lock file.

        MLflow creates its SQLite schema on first use; two processes doing that at once fail, so the first call
        in each process happens under the lock, as does everything passed the client in the ``with`` block.
        """
        from mlflow.tracking import MlflowClient  # heavy import, paid only by assets that track

        if not self.tracking_uri.startswith("sqlite:///"):
            yield MlflowClient(tracking_uri=self.tracking_uri)
            return
        database = Path(self.tracking_uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(database.with_name(database.name + ".lock")):
            client = MlflowClient(tracking_uri=self.tracking_uri)
            client.search_experiments(max_results=1)  # creates or migrates the schema now, inside the lock
            yield client

    def _experiment_id(self, client: Any, stage: str) -> str:
        name = self.experiment_name(stage)
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
        return client.create_experiment(name, artifact_location=Path(self.artifact_root).as_uri(), tags=EXPERIMENT_KIND)

    @contextmanager
    def start_run(
        self,
        run_name: str,
        stage: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Iterator[TrackedRun]:
        """Open a run in ``stage``'s experiment (a nested run: its parent's), log ``params``, yield it, and mark it
        FINISHED or FAILED on exit."""
        with self._locked_client() as client:
            if parent_run_id:
                experiment_id = client.get_run(parent_run_id).info.experiment_id
            else:
                experiment_id = self._experiment_id(client, stage)
        all_tags = {"stage": stage, **(tags or {})}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
        run_id = run.info.run_id
        for key, value in (params or {}).items():
            client.log_param(run_id, key, str(value)[:PARAM_VALUE_LIMIT])
        url = f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"
        try:
            yield TrackedRun(client, run_id, url)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
