"""What a person sees: a finished toy search in a real ``mlflow server`` and in ``optuna-dashboard``,
both on 127.0.0.1, opened in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by selenium with both paths given, so nothing is downloaded; ``.ci/run`` installs them).

Screenshots go to ``$STILTSEARCH_SCREENSHOTS`` when set (else the test's temporary directory).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, start_mlflow_server, stop_server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(1800)]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
NEEDS_CHROMIUM = "needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"

SEARCH = """
name: shown
output_dir: {out}/runs
search: {{num_trials: 4, max_concurrent: 2}}
space: {{layers_kept: [1, 2]}}
training: {{intermediate_steps: 20, target_steps: 20, batch_size: 16}}
toy_model: {{layers: [2], hidden: 64, heads: 2, mlm_steps: 60, mlm_batch_size: 32, corpus_per_language: 2000}}
throughput: {{repeats: 2, max_sequences: 128}}
mlflow: {{tracking_uri: "http://127.0.0.1:{port}"}}
"""


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Iterator[dict[str, Any]]:
    """A finished 4-trial toy search logged through a real MLflow server, and optuna-dashboard over
    its study; both servers stay up for the module."""
    from mlflow.tracking import MlflowClient

    out = tmp_path_factory.mktemp("browser")
    port = free_port()
    server = start_mlflow_server(out, port, out / "mlflow-server.log")
    dashboard = None
    try:
        config = out / "shown.yaml"
        config.write_text(SEARCH.format(out=out, port=port))
        env = {**os.environ, "STILTSEARCH_CACHE": str(cache)}
        done = subprocess.run([sys.executable, "-m", "stiltsearch.search.cli", "run", str(config)], cwd=out, env=env,
                              capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        (search_dir,) = (out / "runs").iterdir()
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        experiment = client.get_experiment_by_name("shown")
        runs = client.search_runs([experiment.experiment_id], max_results=100)
        parent = next(r for r in runs if r.data.tags.get("stiltsearch.kind") == "search")
        children = [r for r in runs if r.data.tags.get("stiltsearch.kind") == "trial"]
        dash_port = free_port()
        with open(out / "dashboard.log", "w") as log:
            dashboard = subprocess.Popen([str(Path(sys.executable).parent / "optuna-dashboard"),
                                          f"sqlite:///{search_dir / 'optuna.db'}", "--host", "127.0.0.1",
                                          "--port", str(dash_port)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        _wait_http(f"http://127.0.0.1:{dash_port}/api/meta")
        yield {"out": out, "ui": f"http://127.0.0.1:{port}", "dashboard": f"http://127.0.0.1:{dash_port}",
               "experiment": experiment, "parent": parent, "children": children, "search_dir": search_dir,
               "stdout": done.stdout,
               "front": {r.info.run_name for r in children if r.data.tags.get("pareto_optimal") == "true"}}
    finally:
        if dashboard is not None:
            stop_server(dashboard)
        stop_server(server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(NEEDS_CHROMIUM)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    profile = tmp_path_factory.mktemp("chromium")  # its profile and temp files, not /tmp's org.chromium.*
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=CHROMEDRIVER, env={**os.environ, "TMPDIR": str(profile)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = Path(os.environ.get("STILTSEARCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


def wait_for(driver: Any, condition: Callable[[], Any], what: str, timeout_s: float = 90) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` and the page text."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = condition()
        except Exception:  # an element not there yet, or replaced while read (a React re-render)
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            text = driver.execute_script("return document.body ? document.body.innerText : ''")
            raise AssertionError(f"{what} did not appear within {timeout_s:.0f} s at {driver.current_url}; "
                                 f"the page says:\n{text[:3000]}")
        time.sleep(0.5)


def page_text(driver: Any) -> str:
    return str(driver.execute_script("return document.body ? document.body.innerText : ''"))


def shot(driver: Any, where: Path, name: str) -> Path:
    """A screenshot, checked not to be blank: a rendered page has many colours, not one."""
    from PIL import Image

    path = where / f"{name}.png"
    driver.save_screenshot(str(path))
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 16, f"{path} is blank ({len(colours)} colours)"
    return path


def run_names(driver: Any) -> set[str]:
    """The trial runs the runs table shows (their names are links)."""
    return set(re.findall(r"\btrial-\d{3}\b", page_text(driver)))


def printed_link(served: dict, label: str) -> str:
    """A link `stiltsearch run` printed at its end ("the front: http://...")."""
    (link,) = re.findall(rf"^\s*{label}: (http://\S+)$", served["stdout"], re.M)
    assert link.startswith(served["ui"] + "/#/experiments/")
    return str(link)


def test_the_link_the_search_prints_opens_its_trials_not_a_genai_overview(served: dict, browser: Any,
                                                                           screenshots: Path) -> None:
    """MLflow 3.17's UI opens an experiment on its GenAI overview ("Traces 0", "No data available")
    whatever the experiment's kind tag says, unless the URL asks for the model-training workflow:
    the links a search gives do."""
    browser.get("about:blank")
    browser.get(printed_link(served, "all trials"))
    everyone = {r.info.run_name for r in served["children"]}
    wait_for(browser, lambda: run_names(browser) == everyone, f"all four trial runs {sorted(everyone)}, flat")
    text = page_text(browser)
    assert "Runs" in text.splitlines() and "No data available" not in text
    assert served["parent"].info.run_name + ": trials" in text  # the saved view, by name
    shot(browser, screenshots, "1-trials-view")


def test_the_parent_run_says_what_the_search_found_and_links_its_views(served: dict, browser: Any,
                                                                        screenshots: Path) -> None:
    parent = served["parent"]
    browser.get("about:blank")
    browser.get(f"{served['ui']}/#/experiments/{served['experiment'].experiment_id}/runs/{parent.info.run_id}")
    front = served["front"]
    wait_for(browser, lambda: f"Pareto front: {len(front)} of 4 completed trials" in page_text(browser),
             "the front in the parent run's description")
    text = page_text(browser)
    for run in served["children"]:  # the description's table lists exactly the front's trials
        number = run.info.run_name.removeprefix("trial-").lstrip("0") or "0"
        row = re.search(rf"^{number}\t", text, re.M)
        assert (row is not None) == (run.info.run_name in front), (run.info.run_name, text[:2000])
    shot(browser, screenshots, "2-parent-run")
    href = browser.execute_script(
        "const a = [...document.querySelectorAll('a')].find(a => a.textContent === 'the Pareto front');"
        "return a && a.getAttribute('href');")
    assert href is not None and href.startswith("#/experiments/"), "the description links the front's view"
    browser.get("about:blank")
    browser.get(f"{served['ui']}/{href}")
    wait_for(browser, lambda: run_names(browser) == front, f"the front's runs {sorted(front)} at the description's link")


def test_the_front_plot_renders_in_the_parent_runs_artifacts(served: dict, browser: Any, screenshots: Path) -> None:
    parent = served["parent"]
    browser.get("about:blank")
    browser.get(f"{served['ui']}/#/experiments/{served['experiment'].experiment_id}/runs/{parent.info.run_id}"
                "/artifacts/pareto/pareto.png")

    def loaded_plot() -> Any:  # the UI fetches the artifact and shows it from a blob: URL
        return browser.execute_script(
            "return [...document.images].filter(i => i.complete && i.src.startsWith('blob:'))"
            ".map(i => [i.naturalWidth, i.naturalHeight])[0]")
    width, height = wait_for(browser, loaded_plot, "the pareto.png image, loaded")
    from PIL import Image

    with Image.open(served["search_dir"] / "pareto.png") as image:
        assert (width, height) == image.size  # the front's plot itself, decoded in full
    assert "pareto/pareto.png" in page_text(browser)
    shot(browser, screenshots, "3-front-plot")


def test_the_report_page_renders_from_the_parent_runs_artifacts(served: dict, browser: Any, screenshots: Path) -> None:
    parent = served["parent"]
    browser.get("about:blank")
    browser.get(f"{served['ui']}/#/experiments/{served['experiment'].experiment_id}/runs/{parent.info.run_id}"
                "/artifacts/report/report.html")
    frame = wait_for(browser, lambda: browser.execute_script("return document.querySelector('iframe')"),
                     "the report's HTML frame in the artifact view", timeout_s=120)
    browser.switch_to.frame(frame)
    try:
        wait_for(browser, lambda: browser.execute_script(
            "return [...document.querySelectorAll('.js-plotly-plot')].length >= 2"
            " && document.body.innerText.includes('STILTs (intermediate tasks)')"), "the report's plotly figures")
        assert "Hypervolume of the STILTs front" in page_text(browser)
    finally:
        browser.switch_to.default_content()
    shot(browser, screenshots, "8-report")


def test_the_trials_on_the_front_can_be_filtered_by_their_tag(served: dict, browser: Any, screenshots: Path) -> None:
    query = urllib.parse.quote("tags.pareto_optimal = 'true'")
    browser.get("about:blank")
    browser.get(f"{served['ui']}/#/experiments/{served['experiment'].experiment_id}/runs?workflowType=machine_learning"
                f"&searchFilter={query}")
    expected = served["front"]
    # MLflow shows the matching child runs under their parent run, folded: unfold it, as a person would
    parent_id = served["parent"].info.run_id
    unfold = wait_for(browser, lambda: browser.execute_script(
        "const row = document.querySelector(`[role=row][row-id='${arguments[0]}']`);"
        "return row && row.querySelector('[role=gridcell][col-id^=\"attributes\"] button');", parent_id),
        "the parent run's row with its unfold button")
    unfold.click()
    wait_for(browser, lambda: run_names(browser) == expected, f"exactly the front's runs {sorted(expected)}")
    shot(browser, screenshots, "4-filtered-front")


def test_the_saved_views_show_both_objectives_as_columns(served: dict, browser: Any, screenshots: Path) -> None:
    browser.get("about:blank")
    browser.get(printed_link(served, "all trials"))
    everyone = {r.info.run_name for r in served["children"]}
    wait_for(browser, lambda: run_names(browser) == everyone, f"all four trial runs {sorted(everyone)}")
    headers = wait_for(browser, lambda: {h for h in ("xtreme_score", "tokens_per_sec") if h in page_text(browser).split()}
                       == {"xtreme_score", "tokens_per_sec"}, "both objectives' column headers")
    assert headers
    text = page_text(browser)
    for run in served["children"]:  # each run's objective values are in the table, as MLflow prints them
        for name in ("xtreme_score", "tokens_per_sec"):
            assert repr(run.data.metrics[name])[:8] in text, (run.info.run_name, name, run.data.metrics[name])
    browser.get("about:blank")
    browser.get(printed_link(served, "the front"))
    wait_for(browser, lambda: run_names(browser) == served["front"], "the front's saved view")
    assert served["parent"].info.run_name + ": Pareto front" in page_text(browser)
    shot(browser, screenshots, "5-front-view")


def test_optuna_dashboard_serves_the_trials_and_the_named_objectives(served: dict) -> None:
    studies = _get_json(f"{served['dashboard']}/api/studies")["study_summaries"]
    (study,) = [s for s in studies if s["study_name"] == "shown"]
    detail = _get_json(f"{served['dashboard']}/api/studies/{study['study_id']}")
    assert detail["objective_names"] == ["xtreme_score", "tokens_per_sec"]
    trials = detail["trials"]
    assert len(trials) == 4 and {t["state"] for t in trials} == {"Complete"}
    by_number = {t["number"]: t for t in trials}
    for run in served["children"]:
        number = int(run.data.tags["stiltsearch.trial_number"])
        values = by_number[number]["values"]
        assert values == pytest.approx([run.data.metrics["xtreme_score"], run.data.metrics["tokens_per_sec"]])
        attrs = {a["key"]: a["value"] for a in by_number[number]["user_attrs"]}
        assert "config" in attrs  # the sampled config the trainable received
    assert {t["number"] for t in detail["best_trials"]} == {int(r.info.run_name[-3:]) for r in served["children"]
                                                              if r.info.run_name in served["front"]}


def test_optuna_dashboard_draws_the_front_with_named_axes(served: dict, browser: Any, screenshots: Path) -> None:
    studies = _get_json(f"{served['dashboard']}/api/studies")["study_summaries"]
    (study,) = [s for s in studies if s["study_name"] == "shown"]
    browser.get("about:blank")
    browser.get(f"{served['dashboard']}/dashboard/studies/{study['study_id']}")

    def plotted() -> bool:
        return bool(browser.execute_script(
            "return [...document.querySelectorAll('.js-plotly-plot')].some(p => p.querySelectorAll('.point').length > 0"
            " && p.innerHTML.includes('xtreme_score') && p.innerHTML.includes('tokens_per_sec'))"))
    wait_for(browser, plotted, "a plotly Pareto-front plot with both objective names on its axes")
    assert "Pareto" in page_text(browser)
    shot(browser, screenshots, "7-optuna-dashboard")
