"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright with the
system browser: ``playwright install`` is never needed).

The page shows the demo's orders, a fill booked while it is open appears without a reload, the
P&L chart renders, and nothing is fetched from anywhere but the dashboard. The test saves its
screenshot as docs/images/dashboard.png (the picture in the docs) under CI=true or with
ORDERLANE_UPDATE_SCREENSHOTS=1; otherwise it writes it under the test's temporary directory, so a
local run leaves the working tree clean.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from orderlane.demo import DemoResult
from orderlane.rendering import format_money
from web.dashboards import Dashboard, sell, trade

Serve = Callable[..., Dashboard]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "images" / "dashboard.png"


def _browser_available() -> None:
    message = None
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    elif shutil.which("node") is None and not _playwright_importable():
        message = "Playwright for Python is not installed (pip install -e './contrib/web[test]')"
    if message is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _playwright_importable() -> bool:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:  # pragma: no cover - the test extra installs it
        return False
    return True


def _screenshot_path(tmp_path: Path) -> Path:
    wanted = os.environ.get("CI", "").lower() == "true" or os.environ.get(
        "ORDERLANE_UPDATE_SCREENSHOTS"
    )
    return SCREENSHOT if wanted else tmp_path / "dashboard.png"


async def test_the_dashboard_in_a_real_browser(
    sqlite_demo: DemoResult, serve_dashboard: Serve, tmp_path: Path
) -> None:
    _browser_available()
    from playwright.async_api import Route, async_playwright, expect

    dashboard = serve_dashboard(sqlite_demo.database_url)
    elsewhere: list[str] = []
    problems: list[str] = []

    async def only_the_dashboard(route: Route) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            elsewhere.append(route.request.url)
            await route.abort()
        else:
            await route.continue_()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.route("**/*", only_the_dashboard)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))

            await page.goto(dashboard.base + "/")

            # The demo's orders, each with its state.
            rows = page.locator("#orders tbody tr")
            await expect(rows).to_have_count(len(sqlite_demo.orders))
            for order in sqlite_demo.orders:
                row = page.locator(f'#orders tr[data-order-id="{order.id}"]')
                await expect(row).to_contain_text(order.id[:8])
                await expect(row).to_contain_text(order.status.value)
            await expect(page.locator("#live-status")).to_have_text("live")

            # The P&L chart is drawn: one bar per trading day, of a real size.
            bars = page.locator("#pnl-chart rect.bar")
            await expect(bars).to_have_count(1)
            assert await bars.first.get_attribute("data-pnl") == "3910", "the demo's net"
            box = await bars.first.bounding_box()
            chart = await page.locator("#pnl-chart").bounding_box()
            assert box is not None
            assert chart is not None
            assert box["height"] > 50
            assert chart["width"] > 300

            # A fill booked while the page is open appears without a reload.
            await page.evaluate("window.stillTheSamePage = true")
            sold = await trade(sqlite_demo.database_url, sell(2), price=74000, commission=40)
            new_row = page.locator(f'#orders tr[data-order-id="{sold.id}"]')
            await expect(new_row).to_contain_text("FILLED", timeout=15_000)
            await expect(new_row).to_contain_text("2/2")
            await expect(page.locator("#fills tbody tr").first).to_contain_text(sold.id[:8])
            await expect(page.locator("#count-orders")).to_have_text("5")
            assert await page.evaluate("window.stillTheSamePage") is True, "the page reloaded"
            pnl = await page.request.get(dashboard.base + "/api/pnl")
            [day] = (await pnl.json())["rows"]
            # The sale's net: 2 x (74,000 - 72,000), less its commission of 40 and the 20 of
            # the opening fee (100 for 10 shares) it releases.
            assert Decimal(day["net_pnl"]) == 3910 + 2 * 2000 - 40 - 20
            await expect(bars.first).to_have_attribute("data-pnl", day["net_pnl"])
            await expect(page.locator("#live .card .value .gain")).to_have_text(
                format_money(Decimal(day["net_pnl"]))
            )

            # One order's page: its timeline and its fills.
            await new_row.locator("a").click()
            await expect(page.locator("#timeline li").first).to_contain_text("OrderCreated")
            await expect(page.locator("#order-fills tbody tr")).to_have_count(1)
            await page.go_back()
            await expect(page.locator("#orders tbody tr")).to_have_count(5)

            shot = _screenshot_path(tmp_path)
            shot.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    assert SCREENSHOT.is_file(), "docs/images/dashboard.png is the docs' picture of it"
    assert elsewhere == [], "the dashboard fetched something from elsewhere"
    assert problems == []
