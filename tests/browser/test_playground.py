"""The playground in a real browser: Debian's Chromium driven by Playwright, against a real server on loopback.
One browser for the module; each test has its own context (its own storage). Screenshots of each state go to
test-output/browser/ (LTXSERVE_TEST_OUTPUT moves it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api.client import SMALL, submit, wait_for
from tests.servers import Server

# Chromium's own background services try to reach Google at start; this machine's network refuses them.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PROMPT = "Waves rolling onto a pebble beach at dawn, gulls calling"
CLIP_S = 120_000  # ms: a generation's deadline on a loaded 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("playground"), tiny_models, {"video_preset": "ultrafast"}).start()
    yield running
    running.stop()


def chromium() -> str:
    """Debian's Chromium, installed on first use (Playwright's own browser download is not reachable here)."""
    if shutil.which("chromium") is None:
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, check=False, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
            subprocess.run(install, check=True, capture_output=True)
    executable = shutil.which("chromium")
    assert executable, "Debian's Chromium did not install: apt-get install -y chromium"
    return executable


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("LTXSERVE_TEST_OUTPUT", "test-output")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, server) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("console", lambda message: message.type == "error" and problems.append(message.text))
    opened.goto(server.base + "/")
    expect(opened.locator("body[data-ready=true]")).to_be_attached()
    yield opened
    context.close()
    # Refused requests (a 401 the test asks for) show up as console errors of the fetch; nothing else may.
    assert [text for text in problems if "the server responded with a status of" not in text] == []


def fill_form(page: Page, key: str, **choices: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").dispatch_event("change")
    page.get_by_label("Prompt").fill(choices.pop("prompt", PROMPT))
    for label, value in choices.items():
        page.get_by_label(label).select_option(value)


def video_state(page: Page, selector: str = "#result") -> dict:
    return page.evaluate(
        "s => { const v = document.querySelector(s); return {ready: v.readyState, duration: v.duration, "
        "time: v.currentTime, width: v.videoWidth, height: v.videoHeight}; }",
        selector,
    )


def test_generate_watch_the_progress_play_the_clip_and_find_it_in_the_history(page, server, shots):
    key = server.create_key("10")
    fill_form(page, key, Duration="6", Resolution="1080p")
    page.get_by_label("Remember the key in this browser").check()
    expect(page.get_by_text("Price: $0.30 for this clip (6 s 1080p).")).to_be_visible()
    expect(page.get_by_text("Balance: $10.00")).to_be_visible()
    page.screenshot(path=shots / "1-form.png", full_page=True)

    # Every value the progress bar takes, as the page sets it.
    page.evaluate("""() => {
        const bar = document.getElementById('progress');
        window.progressSeen = [];
        new MutationObserver(() => window.progressSeen.push(bar.value)).observe(bar, {attributes: true});
    }""")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("button", name="Cancel")).to_be_enabled()
    page.wait_for_function("() => document.getElementById('progress').value > 30", timeout=CLIP_S)
    page.screenshot(path=shots / "2-progress.png", full_page=True)

    expect(page.get_by_role("status")).to_have_text("Completed.", timeout=CLIP_S)
    page.wait_for_function("() => document.getElementById('result').readyState >= 2", timeout=30_000)
    clip = video_state(page)
    assert abs(clip["duration"] - 6) < 0.2 and (clip["width"], clip["height"]) == (1920, 1080)
    assert page.evaluate("() => document.getElementById('result').play().then(() => true)")
    page.wait_for_function("() => document.getElementById('result').currentTime > 0.5", timeout=30_000)
    seen = page.evaluate("() => window.progressSeen")
    assert len(set(seen)) >= 5 and seen == sorted(seen) and seen[-1] == 100
    expect(page.get_by_role("progressbar")).to_have_attribute("value", "100")
    expect(page.get_by_text("cost $0.30")).to_be_visible()
    expect(page.get_by_text("Balance: $9.70")).to_be_visible()
    download = page.get_by_role("link", name="Download the MP4")
    expect(download).to_have_attribute("href", re.compile(r"/v2/requests/.+/output\?expires="))
    page.wait_for_function("() => document.querySelector('#history video')?.readyState >= 2", timeout=30_000)
    page.screenshot(path=shots / "3-completed.png", full_page=True)
    outcome = page.locator("#outcome").text_content()
    seed = outcome.split("Seed ", 1)[1].split(" ", 1)[0]

    # A new visit: the key was remembered, and the history shows the clip with its first frame.
    page.reload()
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    assert page.get_by_label("API key").input_value() == key
    history = page.get_by_role("list", name="History")
    expect(history.get_by_role("listitem")).to_have_count(1)
    expect(history).to_contain_text(PROMPT)
    expect(history).to_contain_text(f"COMPLETED · 6 s 1080p · $0.30 · seed {seed}")
    page.wait_for_function("() => document.querySelector('#history video').readyState >= 2", timeout=30_000)
    page.get_by_role("button", name="Use settings").first.click()
    assert page.get_by_label("Seed").input_value() == seed
    assert page.get_by_label("Prompt").input_value() == PROMPT
    assert page.get_by_label("Resolution").input_value() == "1080p"
    page.get_by_text("Show code").click()
    curl = page.get_by_label("curl").text_content()
    assert f'"seed":{seed}' in curl and "x-api-key: $LTXSERVE_API_KEY" in curl and key not in curl
    assert f"seed={seed}," in page.get_by_label("ltxserve client").text_content()
    page.screenshot(path=shots / "4-history-and-code.png", full_page=True)


def test_a_queued_image_to_video_request_shows_its_turn_and_is_canceled_unbilled(page, server, shots, tmp_path):
    key = server.create_key("10", concurrency_limit=2)
    running = submit(server.base, key, {**SMALL, "duration": 10, "resolution": "2k"}).json()["request_id"]
    wait_for(server.base, key, running, "PROCESSING")
    fill_form(page, key, Duration="6", Resolution="1080p")
    Image.new("RGB", (64, 36), (200, 120, 40)).save(tmp_path / "frame.png")
    page.get_by_label("Image file").set_input_files(tmp_path / "frame.png")
    expect(page.get_by_role("img", name="The chosen first frame")).to_be_visible()
    with page.expect_request(lambda sent: sent.url.endswith("/v2/ltx-2-fast")) as sent:
        page.get_by_role("button", name="Generate").click()
    assert sent.value.post_data_json["image"].startswith("data:image/png;base64,")
    expect(page.get_by_role("status")).to_have_text("Queued: position 1 (next).")
    page.screenshot(path=shots / "5-queued.png", full_page=True)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_have_text("Canceled. You were not charged.")
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    page.screenshot(path=shots / "6-canceled.png", full_page=True)
    requests.post(f"{server.base}/v2/requests/{running}/cancel", headers={"x-api-key": key}, timeout=30)

    newest = requests.get(f"{server.base}/v2/requests", headers={"x-api-key": key}, timeout=30).json()["requests"][0]
    assert newest["status"] == "CANCELED" and newest["request_id"] != running
    assert server.ledger_kinds(newest["request_id"]) == ["reserve", "release"]
    # Read when the page's request ended: only the running 2k 10 s clip's $1.00 was held.
    expect(page.get_by_text("Balance: $9.00")).to_be_visible()


def test_refusals_are_shown_in_the_servers_words(page, server, shots):
    fill_form(page, "ltx_not-a-key")
    expect(page.get_by_text("This key is not accepted.")).to_be_visible()
    page.get_by_role("button", name="Generate").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("401 unauthorized")
    expect(alert).to_contain_text("The API key was not accepted.")
    page.screenshot(path=shots / "7-bad-key.png", full_page=True)

    fill_form(page, server.create_key("0"))
    page.get_by_role("button", name="Generate").click()
    expect(alert).to_contain_text("406 insufficient_credits")
    expect(alert).to_contain_text("costs $0.8 and the key has $0 left")  # the 8 s 2k default
    page.screenshot(path=shots / "8-no-credits.png", full_page=True)

    fill_form(page, server.create_key("10", rpm_limit=1))
    page.get_by_label("Image URL").fill("ftp://example.com/frame.png")
    page.get_by_role("button", name="Generate").click()
    expect(alert).to_contain_text("400 invalid_request")
    expect(alert).to_contain_text("image: ")
    page.screenshot(path=shots / "9-invalid.png", full_page=True)

    page.get_by_label("Image URL").fill("")
    page.get_by_role("button", name="Generate").click()
    expect(alert).to_contain_text("429 rate_limited")
    expect(alert).to_contain_text(re.compile(r"Try again in \d+ s\."))
    page.screenshot(path=shots / "10-rate-limited.png", full_page=True)


def test_the_page_is_served_from_the_package_under_a_strict_policy(server):
    for path in ("/", "/playground"):
        page = requests.get(server.base + path, timeout=30)
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert 'src="/playground/app.js"' in page.text and "http" not in page.text.split("<body>")[0]
    script = requests.get(server.base + "/playground/app.js", timeout=30)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    # The form's choices come from the server's own vocabulary, not from a list in the page.
    words = requests.get(server.base + "/playground/vocabulary.js", timeout=30)
    assert words.headers["content-type"].startswith("text/javascript")
    assert words.text.startswith("export const VOCABULARY = ") and '"resolutions": ["1080p", "2k", "4k"]' in words.text
    assert '"defaults": {"duration": 8, "resolution": "2k"' in words.text and '"decode_video": ' in words.text
    missing = requests.get(server.base + "/playground/secrets.txt", timeout=30)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    paths = requests.get(server.base + "/openapi.json", timeout=30).json()["paths"]
    assert not any(path == "/" or path.startswith("/playground") for path in paths)
