"""Drives headless Chromium through the dashboard pages and prints what a person would see, as JSON.

Run by tests/test_browser.py in a separate process: Playwright's sync API runs its own event loop,
which must not share a process with gevent's monkey-patching. Usage:

    python tests/browser_driver.py CONFIG_JSON

CONFIG_JSON: {"base", "user", "password", "key", "screenshots" (dir or null), "chromium"}.
"""
from __future__ import annotations

import json
import sys

from playwright.sync_api import sync_playwright

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def shot(page, cfg, name):
    if cfg.get("screenshots"):
        page.screenshot(path=f"{cfg['screenshots']}/{name}.png", full_page=True)


def table_rows(page, selector):
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))")


def admin(browser, cfg, width, height, name):
    context = browser.new_context(viewport={"width": width, "height": height},
                                  http_credentials={"username": cfg["user"], "password": cfg["password"]},
                                  locale="en-US")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(cfg["base"] + "/dashboard")
    page.wait_for_selector("#cost-chart svg rect", timeout=10000)
    page.wait_for_selector("#requests-table tbody tr td:not(.empty)", timeout=10000)
    out = {
        "heading": page.inner_text("h1"),
        "today": page.inner_text("#today-totals"),
        "chartRects": page.locator("#cost-chart svg rect").count(),
        "legend": page.inner_text("#cost-chart .legend"),
        "tenants": table_rows(page, "#tenants-table"),
        "models": table_rows(page, "#models-table"),
        "upstreams": table_rows(page, "#upstreams-table"),
        "requests": table_rows(page, "#requests-table"),
        "scrollWidth": page.evaluate("document.documentElement.scrollWidth"),
        "viewportWidth": width,
        "html": page.content(),
        "errors": errors,
    }
    shot(page, cfg, name)
    page.click("#lang-toggle")
    out["headingAfterToggle"] = page.inner_text("h1")
    out["toggleLabel"] = page.inner_text("#lang-toggle")
    page.select_option("#tenant-filter", "bob")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#requests-table tbody tr'))"
        ".every(r => r.cells[1] && r.cells[1].innerText === 'bob')", timeout=10000)
    out["filtered"] = table_rows(page, "#requests-table")
    context.close()
    return out


def me(browser, cfg, width, height, name):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    page.goto(cfg["base"] + "/dashboard/me")
    out = {"headingZh": page.inner_text("h1")}
    page.fill("#key-input", "sk-wrong-key-000000000")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#key-error:not([hidden])", timeout=10000)
    out["wrongKeyError"] = page.inner_text("#key-error")
    out["dataHiddenAfterWrongKey"] = page.eval_on_selector("#me-data", "e => e.hidden")
    page.fill("#key-input", cfg["key"])
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#me-data:not([hidden])", timeout=10000)
    page.wait_for_selector("#me-chart svg", timeout=10000)
    out["today"] = page.inner_text("#me-today")
    out["limits"] = page.inner_text("#me-limits")
    out["models"] = table_rows(page, "#me-models")
    out["keyInStorage"] = page.evaluate("sessionStorage.getItem('ccgate-key') !== null")
    out["keyInLocalStorage"] = page.evaluate(
        "Object.keys(localStorage).some(k => (localStorage.getItem(k) || '').includes('sk-'))")
    out["scrollWidth"] = page.evaluate("document.documentElement.scrollWidth")
    shot(page, cfg, name)
    context.close()
    return out


def main() -> None:
    cfg = json.loads(sys.argv[1])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=cfg["chromium"], args=ARGS)
        result = {
            "adminDesktop": admin(browser, cfg, 1280, 900, "dashboard-desktop"),
            "adminPhone": admin(browser, cfg, 375, 800, "dashboard-phone"),
            "meDesktop": me(browser, cfg, 1280, 900, "me-desktop"),
            "mePhone": me(browser, cfg, 375, 800, "me-phone"),
        }
        browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
