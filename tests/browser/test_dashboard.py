"""The dashboard at ``/ui/`` driven in headless Chromium (Debian's ``chromium``), as its users
use it: sign in with an API key, submit, watch, cancel, look at plots and structures.

One server (authentication on, keys of users 1 and 2) and one browser serve the module; each
test has its own browser context (its own storage, so its own sign-in), records every
request its pages make and fails if one leaves the server's origin, and saves a screenshot
under ``test-artifacts/screenshots/``. Jobs run for real: ``example`` (scripts), ``builtin``
(the transport engine) and ``alphafold3`` on its test double. Nothing waits a fixed time:
each step waits for what the page shows, with generous deadlines.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from support.alphafold import af3_body, double_service, require_af3_fixtures
from support.live import LiveServer, serving
from support.yaptide import FIXTURES, FIXTURES_ABSENT

from cyclotron.client import Client

TESTS_DIR = Path(__file__).resolve().parents[1]
SCREENSHOTS = TESTS_DIR.parent / "test-artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEYS = {1: "key-of-user-one", 2: "key-of-user-two"}
CONFIG: dict[str, Any] = {
    "dispatch": {"interval": 0.2},
    "executors": {"local": {"max_parallel": 4}},
    "auth": {
        "enabled": True,
        "keys": [
            {"sha256": hashlib.sha256(key.encode()).hexdigest(), "user_id": user, "admin": False}
            for user, key in KEYS.items()
        ],
    },
    "services": {
        "example": {"plugin": "script"},
        "builtin": {"plugin": "builtin"},
        "alphafold3": double_service(),
    },
}
ENV = {"PYTHONPATH": str(TESTS_DIR), "AF3_DOUBLE_SECONDS": "2"}
# Generous: jobs run for real on a loaded two-core machine.
JOB_DEADLINE_MS = 240_000
PAGE_DEADLINE_MS = 30_000
JOB_PAGE = re.compile(r"/ui/#/jobs/[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}); scripts/test installs it")
    with serving("sqlite", tmp_path_factory.mktemp("dashboard"), CONFIG, ENV) as live:
        yield live


@pytest.fixture(scope="module")
def playwright(server: LiveServer) -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    """A fresh context at 1280×800; every request its pages make must stay on the server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(PAGE_DEADLINE_MS)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    opened = context.new_page()
    # Shown with a failing test's output: what the page itself complained of.
    opened.on("pageerror", lambda error: print(f"page error: {error}"))
    opened.on("console", lambda m: m.type == "error" and print(f"console: {m.text}"))
    yield opened
    context.close()
    foreign = [
        url
        for url in requested
        if not url.startswith(server.base_url + "/") and not url.startswith(("data:", "blob:"))
    ]
    assert requested and not foreign, f"requests that left the server's origin: {foreign}"


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, server: LiveServer, user: int) -> None:
    """Open the server's address as a browser does and sign in with the user's key."""
    page.goto(server.base_url + "/")
    expect(page).to_have_url(f"{server.base_url}/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(KEYS[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()


def open_submit(page: Page, service: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Submit").click()
    expect(page.get_by_role("heading", name="Submit a job")).to_be_visible()
    page.get_by_label("Service").select_option(service)


def submit_and_open(page: Page) -> str:
    """Submit the form once its check passed; the id of the job page it opens."""
    expect(page.locator("#validation")).to_contain_text("Ready to submit.")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(JOB_PAGE)
    expect(page.locator("#job-status")).to_be_visible()
    return page.url.rsplit("/", 1)[-1]


def status_of(page: Page) -> Any:
    return page.locator("#job-status .status")


def progress_of(page: Page) -> float:
    return float(page.locator("#job-progress progress").get_attribute("value") or "nan")


def client(server: LiveServer, user: int) -> Client:
    return Client(server.base_url, api_key=KEYS[user])


def test_sign_in_upload_run_sh_and_watch_it_complete(page: Page, server: LiveServer) -> None:
    sign_in(page, server, 1)
    open_submit(page, "example")
    page.get_by_label("Name").fill("gated script")
    # The script reports a quarter done, then waits for the test before finishing.
    script = (
        "echo CYCLOTRON_PROGRESS 1/4\n"
        "while [ ! -e go ]; do sleep 0.2; done\n"
        "echo CYCLOTRON_PROGRESS 3/4\nsleep 0.5\necho done > out.txt\n"
    )
    page.get_by_label("choose files:").set_input_files(
        files=[{"name": "run.sh", "mimeType": "text/x-sh", "buffer": script.encode()}]
    )
    expect(page.get_by_role("list", name="Chosen files")).to_contain_text("run.sh")
    job = submit_and_open(page)
    page.evaluate("window.loadedOnce = true")

    expect(status_of(page)).to_have_text("Running", timeout=JOB_DEADLINE_MS)
    page.wait_for_function(
        "() => Number(document.querySelector('#job-progress progress').value) >= 25",
        timeout=JOB_DEADLINE_MS,
    )
    moving = progress_of(page)
    assert 0 < moving < 100
    screenshot(page, "run_sh_running")

    (server.data_dir / "jobs" / job / "tasks" / "0" / "go").touch()
    expect(status_of(page)).to_have_text("Completed", timeout=JOB_DEADLINE_MS)
    page.wait_for_function(
        "() => Number(document.querySelector('#job-progress progress').value) === 100"
    )
    assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"
    expect(page.locator("#timeline li[data-type=completed]")).to_have_count(1)
    expect(page.locator("#files-title ~ div")).to_contain_text("tasks/0/out.txt")
    expect(page.get_by_role("button", name="Download results (ZIP)")).to_be_visible()
    screenshot(page, "run_sh_completed")

    page.get_by_role("link", name="← Jobs").click()
    row = page.locator(f"tr[data-job='{job}']")
    expect(row.locator(".status")).to_have_text("Completed")
    expect(row.locator("progress")).to_have_attribute("value", "100.0")


def test_ex1_on_builtin_shows_its_depth_dose_plot(page: Page, server: LiveServer) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    project = json.loads((FIXTURES / "ex1.json").read_text())["input"]["inputJson"]
    detector = next(d for d in project["detectorManager"]["detectors"] if d["name"] == "CylZ_Mesh")
    depth_bins = detector["geometryData"]["parameters"]["zSegments"]

    sign_in(page, server, 1)
    open_submit(page, "builtin")
    page.get_by_label("YAPTIDE editor project (JSON)").check()
    page.get_by_label("Editor project JSON file").set_input_files(str(FIXTURES / "ex1.json"))
    page.get_by_label("Tasks (ntasks)").fill("2")
    page.get_by_label("Primaries").fill("1000")
    estimates = page.locator("#validation .estimates")
    expect(estimates).to_contain_text("500, 500")
    job = submit_and_open(page)

    expect(status_of(page)).to_have_text("Completed", timeout=JOB_DEADLINE_MS)
    page.get_by_label("Estimator", exact=True).select_option("z_profile")
    plot = page.locator("figure[data-page='0'] .js-plotly-plot")
    expect(plot.locator(".xtitle")).to_have_text("Position (Z) [cm]", timeout=JOB_DEADLINE_MS)
    expect(plot.locator(".ytitle")).to_contain_text("DOSE")
    line = plot.evaluate(
        "plot => plot.data.filter(t => t.mode === 'lines' && t.fill !== 'toself').map("
        "t => ({name: t.name, points: t.x.length, finite: t.y.filter(Number.isFinite).length}))"
    )
    assert line == [{"name": "DOSE", "points": depth_bins, "finite": depth_bins}]
    with client(server, 1) as api:
        dose = api.results(job)["z_profile"].page(0)
    assert dose.axes[0].label == "Position (Z) [cm]" and dose.values.shape == (depth_bins,)
    screenshot(page, "ex1_depth_dose")

    page.get_by_label("Logarithmic scale").check()
    page.wait_for_function(
        "() => document.querySelector(\"figure[data-page='0'] .js-plotly-plot\")"
        "?.layout?.yaxis?.type === 'log'"
    )


def test_alphafold_job_shows_structure_and_pae(page: Page, server: LiveServer) -> None:
    require_af3_fixtures()
    body = af3_body([7])
    sign_in(page, server, 1)
    open_submit(page, "alphafold3")
    page.get_by_label("AlphaFold 3 input JSON", exact=True).fill(json.dumps(body))
    expect(page.locator("#validation .estimates")).to_contain_text("Residues")
    job = submit_and_open(page)

    expect(status_of(page)).to_have_text("Completed", timeout=JOB_DEADLINE_MS)
    # Drawn once the job completed: the viewer and the plots load and draw in the page,
    # which takes a while on a busy machine.
    expect(page.locator("#structure-viewer canvas")).to_be_visible(timeout=JOB_DEADLINE_MS)
    with client(server, 1) as api:
        samples = api.results(job).raw["samples"]
    ranking = page.get_by_role("table", name="Ranking").locator("tbody tr")
    expect(ranking).to_have_count(len(samples))
    assert ranking.evaluate_all("rows => rows.map(r => r.cells[2].textContent)") == ["7"] * len(
        samples
    )
    pae = page.locator("#pae-plot.js-plotly-plot")
    expect(pae.locator(".heatmaplayer, .hm")).not_to_have_count(0, timeout=JOB_DEADLINE_MS)
    size = pae.evaluate("plot => [plot.data[0].type, plot.data[0].z.length]")
    residues = sum(len(next(iter(s.values()))["sequence"]) for s in body["sequences"])
    assert size == ["heatmap", residues]
    page.locator("#sample-title").scroll_into_view_if_needed()
    screenshot(page, "alphafold_structure_and_pae")


def test_cancel_a_running_job(page: Page, server: LiveServer) -> None:
    with client(server, 1) as api:
        job = api.submit_files(
            {"run.sh": "echo CYCLOTRON_PROGRESS 1/2\nsleep 600\n"}, name="to be cancelled"
        )
    sign_in(page, server, 1)
    page.goto(f"{server.base_url}/ui/#/jobs/{job.id}")
    expect(status_of(page)).to_have_text("Running", timeout=JOB_DEADLINE_MS)
    page.get_by_role("button", name="Cancel job").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel this job?")
    dialog.get_by_role("button", name="Cancel job").click()
    expect(status_of(page)).to_have_text("Cancelled", timeout=JOB_DEADLINE_MS)
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    screenshot(page, "cancelled_job")
    with client(server, 1) as api:
        assert api.job(job.id).status == "cancelled"


def test_another_user_sees_none_of_the_first_users_jobs(page: Page, server: LiveServer) -> None:
    with client(server, 1) as api:
        mine = api.submit_files({"run.sh": "true\n"}, name="user one's job")
        assert api.jobs().total >= 1
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    sign_in(page, server, 2)
    expect(page.get_by_role("table", name="Jobs")).to_contain_text("No jobs yet.")
    expect(page.get_by_text("user one's job")).to_have_count(0)
    wide = page.evaluate("document.scrollingElement.scrollWidth")
    assert wide <= 390, f"the job list is {wide} px wide on a 390 px phone"
    page.goto(f"{server.base_url}/ui/#/jobs/{mine.id}")
    expect(page.get_by_role("heading", name="Job not found")).to_be_visible()
    screenshot(page, "other_user_sees_nothing")
    page.keyboard.press("Tab")  # from the page's content, by keyboard alone
    expect(page.get_by_role("link", name="Back to the jobs")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
