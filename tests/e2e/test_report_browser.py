"""The report in a real headless browser (Debian's chromium, driven by Playwright): it renders, every
image decodes, nothing errs and nothing is fetched from outside the page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from sweep import api
from tests.unit.report.sweep_with_curves import sweep_with_curves

INJECTION = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


def chromium() -> str:
    """Debian's chromium; else skip, or fail where SWEEP_TEST_BROWSER=required (`make test`, CI)."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if found:
        return found
    if os.environ.get("SWEEP_TEST_BROWSER") == "required":
        pytest.fail("chromium is missing, and SWEEP_TEST_BROWSER=required; `scripts/browser.sh install` installs it")
    pytest.skip("no chromium: install Debian's (`scripts/browser.sh install`, as root), or run `make test`")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of a sweep whose config carries markup that must show as text, never run."""
    sweep_dir = sweep_with_curves(tmp_path_factory.mktemp("browser") / "s")
    with (sweep_dir / "config.yaml").open("a") as config:
        config.write(f"# {INJECTION}\n")
    return api.report(sweep_dir).index


def test_the_report_renders_in_chromium_with_every_image_and_no_error_or_request(report):
    executable = chromium()
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri(), wait_until="load")
            widths = page.evaluate(
                "Promise.all([...document.images].map(i => i.decode().then(() => i.naturalWidth, () => 0)))"
            )
            title = page.title()
            shown = page.text_content("#provenance pre")
            screenshot = page.screenshot(path=report.parent.parent / "screenshot.png", full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert widths and all(width > 100 for width in widths), widths
    assert len(widths) == len(list(report.parent.glob("*.png")))
    assert [url for url in requests if not url.startswith(("file:", "data:"))] == []
    assert title == f"Sweep report: {report.parent.parent.name}" and INJECTION in shown  # shown, not run
    assert screenshot.startswith(b"\x89PNG")
    pixels = imread(report.parent.parent / "screenshot.png")[..., :3]
    assert pixels.shape[0] > 2000  # the whole page, not the viewport
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, tables and plots, not a blank or one-colour page
    assert 0.03 < (pixels.min(axis=-1) < 0.9).mean() < 0.9  # some ink, not all ink
