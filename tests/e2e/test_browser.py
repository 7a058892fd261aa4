"""The dashboards in a real headless Chromium, after real requests through a mock upstream.

Chromium comes from Debian (`.ci/run` installs it); Playwright drives it with ``executable_path``.
When neither can be had the test is skipped with a loud reason.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anthropic
import openai
import pytest

from tests.helpers import OTHER_KEY, TENANT_KEY, upstream_entry

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ADMIN = {"enabled": True, "path": "/admin", "username": "boss", "password": "browser-test-pw-1"}

try:
    import playwright  # noqa: F401
    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and HAVE_PLAYWRIGHT),
    reason="!!! BROWSER TESTS SKIPPED: no Chromium (apt-get install chromium) or no playwright "
           "(pip install -r requirements-dev.txt) on this machine !!!")


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """Run the browser once against a gateway that served real requests; the tests read the result."""
    from tests.e2e.servers import RunningGateway
    from tests.helpers import write_config
    from tests.mock_upstream import MockResponse, MockUpstream, error_body
    from ccgate import create_app

    tmp = tmp_path_factory.mktemp("browser")
    mock = MockUpstream("mirror-a").start()
    spare = MockUpstream("mirror-b").start()
    # The console's test call (max_tokens 1) succeeds; real requests get 529 and fail over.
    spare.handler = lambda req: spare.default(req) if (req.json or {}).get("max_tokens", 1) == 1 else MockResponse(
        529, body=error_body("overloaded_error", "busy"))
    config = write_config(tmp / "cfg", [upstream_entry(mock)], server={
        "admin": ADMIN, "openai": {"models": {"gpt-4o": "claude-sonnet-4-20250514"}}},
        tenants=[{"id": "alice", "name": "Alice", "key": TENANT_KEY, "limits": {
                     "daily": {"maxUSD": 1}, "window5h": {"maxUSD": 0.5}, "weekly": {"maxUSD": 5}},
                  "allowedModels": ["claude-sonnet-4-*", "claude-opus-4-*", "claude-haiku-4-*"]},
                 {"id": "bob", "name": "Bob", "key": OTHER_KEY, "allowedModels": ["*haiku*"]}])
    gw = RunningGateway(create_app(config, tmp / "data"))
    try:
        a = anthropic.Anthropic(base_url=gw.url + "/anthropic", api_key=TENANT_KEY, max_retries=0)
        for _ in range(3):
            a.messages.create(model="claude-sonnet-4-20250514", max_tokens=5,
                              messages=[{"role": "user", "content": "hi"}])
        with a.messages.stream(model="claude-sonnet-4-20250514", max_tokens=5,
                               messages=[{"role": "user", "content": "hi"}]) as s:
            s.get_final_message()
        o = openai.OpenAI(base_url=gw.url + "/openai/v1", api_key=OTHER_KEY, max_retries=0)
        o.chat.completions.create(model="claude-3-5-haiku-20241022",
                                  messages=[{"role": "user", "content": "hi"}])
        # CCGATE_SCREENSHOTS=docs/screenshots refreshes the README's pictures.
        shots = Path(os.environ.get("CCGATE_SCREENSHOTS") or tmp / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        cfg = {"base": gw.url, "user": ADMIN["username"], "password": ADMIN["password"],
               "key": TENANT_KEY, "screenshots": str(shots), "chromium": CHROMIUM,
               "mirror": spare.url}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        proc = subprocess.run([sys.executable, str(ROOT / "tests" / "browser_driver.py"),
                               json.dumps(cfg)], capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)
    finally:
        gw.stop()
        mock.stop()
        spare.stop()


def test_admin_dashboard_renders_chart_and_tables(seen):
    d = seen["adminDesktop"]
    assert d["errors"] == []
    assert d["heading"] == "CCGate dashboard"
    assert d["chartRects"] >= 2 and "alice" in d["legend"] and "bob" in d["legend"]
    assert "Requests\n5" in d["today"].replace("\t", "\n")
    tenants = {row[0]: row for row in d["tenants"]}
    assert tenants["Alice (alice)"][1] == "4" and tenants["Bob (bob)"][1] == "1"
    assert "%" in tenants["Alice (alice)"][5]  # the daily-limit bar
    assert any(row[0] == "claude-sonnet-4-20250514" and row[1] == "4" for row in d["models"])
    assert d["upstreams"][0][0] == "mirror-a (mirror-a)" and d["upstreams"][0][3] == "5"
    assert len(d["requests"]) == 5
    assert {row[3] for row in d["requests"]} == {"anthropic", "openai"}
    assert TENANT_KEY not in d["html"] and OTHER_KEY not in d["html"]


def test_prices_and_upstream_money_are_shown(seen):
    d = seen["adminDesktop"]
    prices = {row[0]: row for row in d["prices"]}
    assert prices["claude-sonnet-4-20250514"][1:3] == ["$3", "$15"]
    # per 1K searches, fast mode, batch results
    assert prices["claude-sonnet-4-20250514"][6:9] == ["$10", "×6", "×0.5"]
    assert prices["claude-sonnet-4-20250514"][9].startswith("genai-prices")
    assert "retired on 2026-06-15" in prices["claude-sonnet-4-20250514"][9]
    mirror = d["upstreams"][0]
    assert mirror[7] == "0" and mirror[8].startswith("5 · 185 · $") and "→" in mirror[8]


def test_language_toggle(seen):
    d = seen["adminDesktop"]
    assert d["headingAfterToggle"] == "CCGate 控制台" and d["toggleLabel"] == "English"


def test_request_log_filter(seen):
    assert {row[1] for row in seen["adminDesktop"]["filtered"]} == {"bob"}


def test_tenant_page_shows_own_numbers_and_rejects_wrong_key(seen):
    me = seen["meDesktop"]
    assert me["headingZh"] == "我的 CCGate 用量"  # Accept-Language zh-CN
    assert "密钥无效" in me["wrongKeyError"] and me["dataHiddenAfterWrongKey"] is True
    assert "4" in me["today"]
    assert "$1.00" in me["limits"]  # the daily limit
    assert me["models"][0][0] == "claude-sonnet-4-20250514"
    assert me["keyInStorage"] is True and me["keyInLocalStorage"] is False


def test_phone_width_has_no_horizontal_scroll(seen):
    assert seen["adminPhone"]["scrollWidth"] <= 375
    assert seen["mePhone"]["scrollWidth"] <= 375
    assert seen["adminPhone"]["chartRects"] >= 2


def test_console_flows(seen):
    c = seen["console"]
    assert c["errors"] == []
    assert c["keyWorks"] == 200  # the key shown once works at once
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:" in c["snippet"] and "/anthropic\n" in c["snippet"]
    assert c["formDaily"] == "3" and c["limitsAfterEdit"] == {"daily": {"maxUSD": 5}}
    assert c["resourcesAfterEdit"] == [True, None, None]  # ticked Files API only
    assert c["disabledKey"] == 403
    assert c["formTest"].startswith("✓") and c["rowTest"].startswith("✓")
    assert c["failoverStatuses"] == [200, 200]
    assert c["attempts"][0][:2] == ["mirror-b", "529"] and c["attempts"][0][2] == "HTTP 529"
    assert c["attempts"][1][:2] == ["mirror-a", "200"]
    assert "Model requested" in c["detail"]
    assert "sk-mirror-b-key-0123456789" not in c["html"] and TENANT_KEY not in c["html"]
    assert c["phoneScrollWidth"] <= 375 and c["phoneDialogWidth"] <= 375


@pytest.mark.parametrize("width", [1280, 1024, 375])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_table_fits_and_its_actions_are_reachable(seen, width, lang):
    """Issue 33: at 1280 px, a tenant with 5-hour and weekly limits pushed the actions off-screen.
    Now the page never scrolls sideways and each table's buttons are on screen."""
    layout = seen["layouts"][f"{width}-{lang}"]
    assert layout["scrollWidth"] <= width
    for table, box in layout["actions"].items():
        assert 0 <= box["left"] and box["right"] <= width + 0.5, (table, box)
    assert layout["actions"]["#tenants-table"]["buttons"] >= 3
    assert layout["actions"]["#upstreams-table"]["buttons"] >= 1
