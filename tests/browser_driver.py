"""Drives headless Chromium through the dashboard pages and prints what a person would see, as JSON.

Run by tests/test_browser.py in a separate process: Playwright's sync API runs its own event loop,
which must not share a process with gevent's monkey-patching. Usage:

    python tests/browser_driver.py CONFIG_JSON

CONFIG_JSON: {"base", "user", "password", "key", "screenshots" (dir or null), "chromium",
"mirror" (the URL of a spare mock upstream for the console flow)}.
"""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

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
        "prices": table_rows(page, "#prices-table"),
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


ACTION_TABLES = ("#tenants-table", "#upstreams-table", "#requests-table")


def layouts(browser, cfg):
    """The dashboard at 1280, 1024 and 375 px in both languages: where each table's actions
    (its first row's last cell) and the page's right edge are; a screenshot of each."""
    out = {}
    for width in (1280, 1024, 375):
        for lang in ("en", "zh"):
            context = browser.new_context(
                viewport={"width": width, "height": 900},
                http_credentials={"username": cfg["user"], "password": cfg["password"]})
            context.add_init_script(f"localStorage.setItem('ccgate-lang', '{lang}')")
            page = context.new_page()
            page.goto(cfg["base"] + "/dashboard")
            page.wait_for_selector("#requests-table tbody tr td:not(.empty)", timeout=10000)
            # In one script: the dashboard re-renders its tables as data arrives, so a cell
            # found in one step may be replaced by the next.
            actions = page.evaluate("""tables => Object.fromEntries(tables.map(t => {
                const cell = document.querySelector(t + ' tbody tr:first-child td:last-child');
                // the window scrolls down to it; the table's own box is not scrolled sideways
                window.scrollTo(0, window.scrollY + cell.getBoundingClientRect().top - 100);
                const box = cell.getBoundingClientRect();
                return [t, {left: box.left, right: box.right,
                            buttons: cell.querySelectorAll('button').length}];
            }))""", list(ACTION_TABLES))
            out[f"{width}-{lang}"] = {
                "scrollWidth": page.evaluate("document.documentElement.scrollWidth"),
                "actions": actions}
            shot(page, cfg, f"dashboard-{width}-{lang}")
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


def ask(cfg, key) -> int:
    """One message through the gateway with a tenant key: the HTTP status."""
    req = urllib.request.Request(cfg["base"] + "/anthropic/v1/messages", method="POST",
                                 headers={"x-api-key": key, "content-type": "application/json"},
                                 data=json.dumps({"model": "claude-sonnet-4-20250514", "max_tokens": 5,
                                                  "messages": [{"role": "user", "content": "hi"}]}).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def admin_json(page, path):
    return page.evaluate("p => fetch(location.origin + '/admin/api' + p).then(r => r.json())", path)


def row_button(page, table, first_cell_contains, label):
    row = page.locator(f"{table} tbody tr", has_text=first_cell_contains).first
    row.get_by_role("button", name=label, exact=True).click()


def console(browser, cfg):
    """The operator's flows: add a tenant and use its key, change a limit, disable, add and test
    an upstream, open a failed-over request's detail."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                                  http_credentials={"username": cfg["user"], "password": cfg["password"]})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.goto(cfg["base"] + "/dashboard")
    page.wait_for_selector("#tenants-table tbody tr td:not(.empty)", timeout=10000)
    out = {}
    page.click("#add-tenant")
    page.fill("#tenant-form [name=id]", "sister")
    page.fill("#tenant-form [name=name]", "Sister")
    page.fill("#tenant-form [name=daily]", "3")
    page.click("#tenant-form button[type=submit]")
    page.wait_for_selector("#key-dialog[open]", timeout=10000)
    key = page.input_value("#new-key")
    out["snippet"] = page.inner_text("#key-snippet")
    out["keyWorks"] = ask(cfg, key)
    shot(page, cfg, "console-new-key")
    page.click("#key-dialog [data-close]")
    page.wait_for_selector("#tenants-table tbody tr:has-text('Sister')", timeout=10000)
    row_button(page, "#tenants-table", "Sister (sister)", "Edit")
    page.wait_for_selector("#tenant-dialog[open]")
    out["formDaily"] = page.input_value("#tenant-form [name=daily]")
    page.fill("#tenant-form [name=daily]", "5")
    page.check("#tenant-form [name=allowFiles]")
    shot(page, cfg, "console-edit-tenant")
    page.click("#tenant-form button[type=submit]")
    page.wait_for_selector("#tenant-dialog:not([open])", state="attached")
    sister = [t for t in admin_json(page, "/config")["tenants"] if t["id"] == "sister"][0]
    out["limitsAfterEdit"] = sister.get("limits")
    out["resourcesAfterEdit"] = [sister.get(n) for n in ("allowFiles", "allowSkills", "allowBatches")]
    row_button(page, "#tenants-table", "Sister (sister)", "Disable")
    page.wait_for_function("() => Array.from(document.querySelectorAll('#tenants-table tbody tr'))"
                           ".some(r => r.innerText.includes('sister') && r.innerText.includes('disabled'))",
                           timeout=10000)
    out["disabledKey"] = ask(cfg, key)
    page.click("#add-upstream")
    page.fill("#upstream-form [name=id]", "mirror-b")
    page.fill("#upstream-form [name=url]", cfg["mirror"])
    page.fill("#upstream-form [name=key]", "sk-mirror-b-key-0123456789")
    page.click("#upstream-form-test")
    page.wait_for_function("() => /[✓✗]/.test(document.querySelector('#upstream-test-result').innerText)",
                           timeout=10000)
    out["formTest"] = page.inner_text("#upstream-test-result")
    shot(page, cfg, "console-add-upstream")
    page.click("#upstream-form button[type=submit]")
    page.wait_for_selector("#upstreams-table tbody tr:has-text('mirror-b')", timeout=10000)
    row_button(page, "#upstreams-table", "mirror-b (mirror-b)", "Test")
    page.wait_for_function("() => /[✓✗]/.test(document.querySelector('#upstreams-table').innerText)",
                           timeout=10000)
    out["rowTest"] = page.inner_text("#upstreams-table tbody tr:has-text('mirror-b') .test-result")
    out["failoverStatuses"] = [ask(cfg, cfg["key"]) for _ in range(2)]
    listed = admin_json(page, "/requests?limit=100")["requests"]
    index = next(i for i, r in enumerate(listed) if len(r.get("attempts") or []) == 2)
    page.evaluate("() => window.CCGateDashboard.reload()")
    page.wait_for_function(f"() => document.querySelectorAll('#requests-table tbody tr').length > {index}")
    page.locator("#requests-table tbody tr").nth(index).get_by_role("button", name="Details").click()
    page.wait_for_selector("#request-dialog[open]", timeout=10000)
    out["detail"] = page.inner_text("#request-detail")
    out["attempts"] = table_rows(page, "#attempts-table")
    shot(page, cfg, "console-request-detail")
    page.click("#request-dialog [data-close]")
    out["html"] = page.content()
    phone = context.new_page()
    phone.set_viewport_size({"width": 375, "height": 800})
    phone.goto(cfg["base"] + "/dashboard")
    phone.wait_for_selector("#tenants-table tbody tr td:not(.empty)", timeout=10000)
    phone.click("#add-tenant")
    phone.wait_for_selector("#tenant-dialog[open]")
    out["phoneScrollWidth"] = phone.evaluate("document.documentElement.scrollWidth")
    out["phoneDialogWidth"] = phone.evaluate("document.querySelector('#tenant-dialog').getBoundingClientRect().right")
    shot(phone, cfg, "console-phone")
    out["errors"] = errors
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
            "console": console(browser, cfg),
            "layouts": layouts(browser, cfg),
        }
        browser.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
