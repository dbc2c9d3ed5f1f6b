"""End to end in a real browser: Debian's Chromium driven by Playwright against `bia ui`.

Upload the bundled image, ask for a segmentation (scripted model), and check that the overlay
and the measurement table appear. A screenshot is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_ui_handlers import scripted_factory

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("BIA_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("BIA_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"]

if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("Chromium is missing in CI: `make test` installs Debian's chromium")
    pytest.skip("Chromium not installed (make test installs it with apt-get)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ui.app import build_app

    app = build_app(scripted_factory, output_root=tmp_path_factory.mktemp("ui-out"))
    port = _free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                       share=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture
def page(server: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(server)
        yield page
        browser.close()


def test_upload_ask_and_see_overlay_and_table(page: object) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "examples" /
                                                               "nuclei.tif"))
    page.locator("#status").get_by_text("Loaded").wait_for()
    page.locator("#request textarea").fill("segment the nuclei and measure their area")
    page.locator("#send").click()
    page.locator("#overlay img").wait_for()
    table = page.locator("#table")
    table.get_by_text("area_um2").first.wait_for()
    page.locator("#chat").get_by_text("Mean area:").first.wait_for()  # the number asked for
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "ui_segmentation.png"
    page.screenshot(path=str(shot), full_page=True)
    # The table virtualises its rows: only the visible ones are in the page.
    assert page.locator("#table [role=row]").count() >= 6
    assert page.locator("#plot img").count() == 1
    assert page.locator("#table-file").get_by_text(".csv").count() == 1
    assert shot.stat().st_size > 20_000


def test_bad_upload_shows_a_message(page: object, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 50)
    page.locator("#upload input[type=file]").set_input_files(str(broken))
    page.locator("#status").get_by_text("broken.tif").wait_for()
    assert "⚠️" in page.locator("#status").inner_text()
