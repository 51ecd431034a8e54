"""The UIs as a user sees them: `dagster dev` and `mlflow ui` started the README's way, driven by headless Chromium.

One Dagster instance serves the whole module, in the order a newcomer goes: the asset graph, an ingestion launched by
clicking, a main run's report on its asset page, then the MLflow UI over the runs those made. Screenshots land in
``$SEMID_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the checkout, git-ignored) so a failure can be looked at.
Chromium is the system's (Debian `chromium`, installed by `.ci/run`); Playwright only drives it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from assets.families import TABLE_KEYS
from tests.conftest import REPO_ROOT, shared_data_root
from tests.servers import BIN, cli_env, free_port, graphql, run_job, serving

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make setup` (.[dev])")

CHROMIUM = os.environ.get("SEMID_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("SEMID_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "ui"
INGEST_PARTITION = "amazon2014-musical-instruments"  # 50 raw reviews: the ingestion takes seconds
REPORT_PARTITION = "amazon2018-gift-cards"  # the smallest data set with item text
# Gift Cards' 5-core has ~150 items: 8 codes per level keep every level's code usage above the blocking check's floor
REPORT_RUN_CONFIG = {"ops": {"tokenizer_rqvae": {"config": {"codebook_size": 8, "epochs": 30}}}}
RUN_SECONDS = 600  # a launched run on 2 busy cores

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `.ci/run` installs Debian's `chromium`")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    if not (shared_data_root() / "amazon2018-gift-cards").is_dir():
        pytest.skip(f"real data folder {shared_data_root()} is absent (set SEMID_DATA_ROOT or place ../shared/data)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return tmp_path_factory.mktemp("ui")


@pytest.fixture(scope="module")
def dagster_ui(workspace: Path) -> Iterator[str]:
    """`make ui`'s command (webserver and daemon) on a free port and an isolated instance."""
    port = free_port()
    command = [BIN / "dagster", "dev", "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with serving(command, f"{url}/server_info", cli_env(workspace), workspace, ARTIFACTS / "dagster-dev.log"):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request) -> Iterator[object]:
    """A fresh page; its screenshot is saved under the test's name whether the test passes or fails."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(60_000)
    yield page
    page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    page.close()


def open_dagster(page, url: str) -> None:
    """Go to ``url`` and dismiss the first-visit newsletter dialog when it shows."""
    page.goto(url, timeout=120_000)
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=10_000)
        skip.click()
    except sync_api.TimeoutError:
        pass


def test_asset_graph_shows_every_stage_and_tokenizer_table(dagster_ui, page):
    """Each group's graph (the whole graph no longer fits a screen, and draws only the nodes in view) shows every
    asset of that group: every stage, every tokenizer family's tokenizer and table side by side."""
    groups = asset_groups(dagster_ui)
    expected = set().union(*groups.values())
    stages = {"normalized_dataset", "item_embeddings", "tokenizer_rqvae", "tokenizer_moc", "ctr_model", "report"}
    assert stages | {key.path[-1] for key in TABLE_KEYS} <= expected, "a stage or a tokenizer's table is missing"
    assert {key.path[-1] for key in TABLE_KEYS} <= groups["semantic_ids"], "the tables are not side by side"
    page.set_viewport_size({"width": 2400, "height": 3200})  # six tables stacked: about 2,400 px at the fitted zoom
    open_dagster(page, dagster_ui)
    missing = []
    for group, names in sorted(groups.items()):
        page.goto(f"{dagster_ui}/locations/pipelines.definitions/asset-groups/{group}")
        page.get_by_text(group, exact=True).first.wait_for()
        page.locator(".react-flow__node, [data-testid*=asset-node], svg").first.wait_for(state="attached")
        page.wait_for_timeout(2000)  # the layout settles
        page.screenshot(path=ARTIFACTS / f"graph-{group}.png")
        html = page.content()
        missing += [f"{group}/{name}" for name in sorted(names) if name not in html]
    assert not missing, f"the asset graph does not show {missing}"


def test_ingestion_launched_by_clicking_reaches_success(dagster_ui, page):
    open_dagster(page, f"{dagster_ui}/locations/pipelines.definitions/jobs/ingest")
    page.get_by_role("button", name="Materialize all").click()
    page.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill(INGEST_PARTITION)
    page.locator("span", has_text=INGEST_PARTITION).first.click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Launch 1 run").click()
    wait_for_a_run(dagster_ui)  # leaving the page before the launch request is answered would cancel it
    status = wait_for_run_status(page, dagster_ui)
    assert status == "Success", f"the launched ingestion ended {status}"
    page.get_by_text(f"partition: {INGEST_PARTITION}").first.wait_for()


def test_report_image_shows_on_the_report_asset_page(dagster_ui, workspace, page):
    run_main_job(workspace, REPORT_PARTITION)
    open_dagster(page, f"{dagster_ui}/assets/report?partition={REPORT_PARTITION}")
    page.get_by_placeholder("Filter metadata keys").fill("plot")
    page.locator("tr", has_text="plot").get_by_text("[Show Markdown]").click()
    plot = page.get_by_role("dialog").locator('img[src^="data:image/png"]').first
    plot.wait_for(state="visible")
    width = plot.evaluate("image => image.naturalWidth")
    assert width > 100, f"the report's image did not render (natural width {width})"


def test_mlflow_ui_lists_runs_and_charts_a_metric(workspace, page, monkeypatch):
    """`make mlflow-ui`'s command over the runs the tests above made: the experiments listed, then the run link of
    the RQ-VAE tokenizer's Dagster materialization opens its run in the model-training view, with its loss curve."""
    database = workspace / "out" / "mlflow" / "mlflow.db"
    if not database.is_file():
        run_main_job(workspace, REPORT_PARTITION)  # when this test runs alone
    port = free_port()
    command = [
        BIN / "mlflow", "ui", "--backend-store-uri", f"sqlite:///{database}", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    monkeypatch.setenv("DAGSTER_HOME", str(workspace / "dagster_home"))  # the instance's dagster.yaml reads it
    link = mlflow_link(workspace, "tokenizer_rqvae").replace("http://127.0.0.1:5000", f"http://127.0.0.1:{port}")
    assert link.endswith("?workflowType=machine_learning"), link
    with serving(command, f"http://127.0.0.1:{port}/health", dict(os.environ), workspace, ARTIFACTS / "mlflow.log"):
        page.goto(f"http://127.0.0.1:{port}/#/?workflowType=machine_learning", timeout=120_000)
        page.get_by_role("link", name="semid/tokenizer").first.wait_for()
        page.goto(link)
        page.get_by_text(f"tokenizer:rqvae:{REPORT_PARTITION}").first.wait_for()
        page.get_by_role("tab", name="Model metrics").click()
        page.get_by_text("codebook_usage", exact=False).first.wait_for()  # a section per prefix: train, codebook_...
        page.get_by_placeholder("Search metric charts").fill("train/loss")
        page.get_by_text("loss", exact=True).first.wait_for()  # the chart `loss` in section `train`
        page.locator("canvas, svg.main-svg").first.wait_for(state="attached")  # the chart itself, once drawn


def mlflow_link(workspace: Path, asset: str) -> str:
    """The MLflow run link of ``asset``'s latest materialization, as the Dagster UI shows it."""
    with DagsterInstance.from_config(str(workspace / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(AssetKey(asset))
    return str(event.asset_materialization.metadata["mlflow_run"].value)


def asset_groups(url: str) -> dict[str, set[str]]:
    """Every asset key's name by group, read over the webserver's GraphQL API."""
    payload = graphql(url, "{ assetNodes { assetKey { path } groupName } }")
    groups: dict[str, set[str]] = {}
    for node in payload["data"]["assetNodes"]:
        groups.setdefault(node["groupName"], set()).add(node["assetKey"]["path"][-1])
    return groups


def wait_for_run_status(page, url: str) -> str:
    """Wait until the newest run ends (over GraphQL), then return the status the runs page shows for it."""
    deadline = time.monotonic() + RUN_SECONDS
    while (status := newest_run_status(url)) not in FINAL_STATUSES:
        if time.monotonic() > deadline:
            raise AssertionError(f"no launched run finished within {RUN_SECONDS} s: {graphql(url, RUNS_QUERY)}")
        time.sleep(2)
    page.goto(f"{url}/runs")
    shown = FINAL_STATUSES[status]
    page.get_by_text(shown, exact=True).first.wait_for()  # the page renders the list after loading
    return shown


def newest_run_status(url: str) -> str | None:
    runs = graphql(url, RUNS_QUERY)["data"]["runsOrError"]["results"]
    return runs[0]["status"] if runs else None


FINAL_STATUSES = {"SUCCESS": "Success", "FAILURE": "Failure", "CANCELED": "Canceled"}  # GraphQL -> runs page
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId status } } } }"


def wait_for_a_run(url: str, seconds: float = 120) -> None:
    """Until the instance records a run (the launch request was handled)."""
    deadline = time.monotonic() + seconds
    while not graphql(url, RUNS_QUERY)["data"]["runsOrError"]["results"]:
        assert time.monotonic() < deadline, f"clicking Launch started no run within {seconds:.0f} s"
        time.sleep(1)


def run_main_job(workspace: Path, partition: str) -> None:
    """The main job on ``partition`` from the CLI, into the instance the UI serves."""
    run_job(workspace, "main", partition, REPORT_RUN_CONFIG)
