"""The UIs as a user sees them: `dagster dev` and `mlflow ui` started the README's way, driven by headless Chromium.

One Dagster instance serves the whole module, in the order a newcomer goes: the asset graph, an ingestion launched by
clicking, a main run's report on its asset page, then the MLflow UI over the runs those made. Screenshots land in
``$SEMID_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the checkout, git-ignored) so a failure can be looked at.
Chromium is the system's (Debian `chromium`, installed by `.ci/run`); Playwright only drives it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, shared_data_root
from tests.servers import BIN, cli_env, free_port, serving

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make setup` (.[dev])")

CHROMIUM = os.environ.get("SEMID_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("SEMID_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "ui"
INGEST_PARTITION = "amazon2014-musical-instruments"  # 50 raw reviews: the ingestion takes seconds
REPORT_PARTITION = "amazon2018-gift-cards"  # the smallest data set with item text
# Gift Cards' 5-core has ~150 items: 8 codes per level keep every level's code usage above the blocking check's floor
REPORT_RUN_CONFIG = {"ops": {"tokenizer": {"config": {"codebook_size": 8, "epochs": 30}}}}
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
    expected = asset_names(dagster_ui)
    assert {"normalized_dataset", "item_embeddings", "tokenizer", "semantic_ids", "ctr_model", "report"} <= expected
    page.set_viewport_size({"width": 2400, "height": 2000})  # the graph draws only the nodes in view
    open_dagster(page, f"{dagster_ui}/asset-groups")
    page.get_by_role("button", name="ingest").first.wait_for()
    page.keyboard.press("Alt+e")  # graph settings: expand all groups
    page.get_by_text("normalized_dataset", exact=True).first.wait_for()
    missing = sorted(name for name in expected if page.get_by_text(name, exact=True).count() == 0)
    assert not missing, f"the asset graph does not show {missing}"


def test_ingestion_launched_by_clicking_reaches_success(dagster_ui, page):
    open_dagster(page, f"{dagster_ui}/locations/pipelines.definitions/jobs/ingest")
    page.get_by_role("button", name="Materialize all").click()
    page.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill(INGEST_PARTITION)
    page.locator("span", has_text=INGEST_PARTITION).first.click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Launch 1 run").click()
    page.goto(f"{dagster_ui}/runs")
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


def test_mlflow_ui_lists_runs_and_charts_a_metric(workspace, page):
    """`make mlflow-ui`'s command over the runs the tests above made."""
    database = workspace / "out" / "mlflow" / "mlflow.db"
    if not database.is_file():
        run_main_job(workspace, REPORT_PARTITION)  # when this test runs alone
    port = free_port()
    command = [
        BIN / "mlflow", "ui", "--backend-store-uri", f"sqlite:///{database}", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    with serving(command, f"http://127.0.0.1:{port}/health", dict(os.environ), workspace, ARTIFACTS / "mlflow.log"):
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        page.get_by_role("link", name="semid").first.click()
        run = page.get_by_role("link", name=f"tokenizer:{REPORT_PARTITION}").first
        run.wait_for()
        run.click()
        page.get_by_role("tab", name="Model metrics").click()
        chart = page.get_by_text("loss", exact=True).first
        chart.wait_for()
        assert page.locator("canvas, svg.main-svg").count() > 0, "the run's metric charts did not render"


def asset_names(url: str) -> set[str]:
    """Every asset key's name, read over the webserver's GraphQL API."""
    payload = graphql(url, "{ assetNodes { assetKey { path } } }")
    return {node["assetKey"]["path"][-1] for node in payload["data"]["assetNodes"]}


def wait_for_run_status(page, url: str) -> str:
    """Reload the runs page until the newest run shows a final status; return it."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        page.reload()
        for status in ("Success", "Failure", "Canceled"):
            if page.get_by_text(status, exact=True).count():
                return status
        time.sleep(5)
    raise AssertionError(f"no launched run finished within {RUN_SECONDS} s: {graphql(url, RUNS_QUERY)}")


RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId status } } } }"


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_main_job(workspace: Path, partition: str) -> None:
    """The main job on ``partition`` from the CLI, into the instance the UI serves."""
    config = workspace / "report_run.yaml"
    config.write_text(json.dumps(REPORT_RUN_CONFIG))  # JSON is YAML
    command = [
        BIN / "dagster", "job", "execute", "-m", "pipelines.definitions", "-j", "main",
        "--tags", json.dumps({"dagster/partition": partition}), "-c", config,
    ]  # fmt: skip
    completed = subprocess.run(
        command, check=False, cwd=workspace, env=cli_env(workspace), capture_output=True, text=True, timeout=1200
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
