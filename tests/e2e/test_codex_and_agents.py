"""Issue 33: real OpenAI Responses clients through the gateway to a mock upstream.

- Codex CLI 0.171 (``npm install @openai/codex@0.171.0``), a custom provider with
  ``wire_api = "responses"`` and ``env_key``: ``codex exec`` completes a turn in which the mock
  asks for one shell tool call, which Codex runs and answers.
- openai-agents 0.24 with its defaults (the Responses API) runs a tool-using agent.

``.ci/run`` installs both into ``.ci/`` (kept apart from the project's own packages); where
they are missing the tests are skipped, loudly.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import gevent.subprocess
import pytest

from tests.helpers import ROOT, TENANT_KEY
from tests.mock_upstream import MockResponse, message, message_events

CODEX = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "codex"
AGENTS = ROOT / ".ci" / "agents"
MODEL = "claude-sonnet-4-5"


def tool_then_answer(upstream, tool: str, tool_input: dict):
    """The mock asks for ``tool`` once, then answers with what the tool returned."""
    def handler(req):
        doc = req.json
        last = doc["messages"][-1]["content"]
        results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"] \
            if isinstance(last, list) else []
        if results:
            said = json.dumps(results[0].get("content"), ensure_ascii=False)
            msg = message(doc["model"], [{"type": "text", "text": f"The tool said: {said}"}])
        else:
            msg = message(doc["model"], [{"type": "text", "text": "Checking."}, {
                "type": "tool_use", "id": "toolu_real1", "name": tool, "input": tool_input}],
                stop_reason="tool_use")
        return upstream.stream(message_events(msg)) if doc.get("stream") else \
            MockResponse(body=json.dumps(msg).encode())
    upstream.handler = handler


def run(args: list, **kwargs) -> str:
    proc = gevent.subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, **kwargs)
    out, _ = proc.communicate(timeout=120)
    return out.decode(errors="replace")


def test_codex_cli_runs_a_shell_tool_call_through_the_gateway(gw, upstream, tmp_path):
    if not CODEX.exists():
        pytest.skip("!!! CODEX CLI TEST SKIPPED: npm install --prefix .ci/node "
                    "@openai/codex@0.171.0 (.ci/run does) !!!")
    tool_then_answer(upstream, "exec_command", {"cmd": "echo hello-from-shell"})
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    # The README's config.toml for Codex CLI, pointed at this gateway.
    (home / "config.toml").write_text(
        f'model = "{MODEL}"\nmodel_provider = "ccgate"\n\n[model_providers.ccgate]\n'
        f'name = "CCGate"\nbase_url = "{gw.url}/openai/v1"\nenv_key = "CCGATE_API_KEY"\n'
        f'wire_api = "responses"\n')
    out = run([str(CODEX), "exec", "--skip-git-repo-check", "say hello from the shell"],
              cwd=work, env={**os.environ, "CODEX_HOME": str(home), "CCGATE_API_KEY": TENANT_KEY})
    assert "hello-from-shell" in out and "The tool said:" in out, out[-2000:]
    assert len(upstream.requests) == 2
    result = upstream.requests[1].json["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_real1"
    assert "hello-from-shell" in json.dumps(result["content"])
    records = [json.loads(line) for f in (Path(gw.gateway.data_dir) / "usage").rglob("*.json")
               for line in f.read_text().splitlines()]
    assert len(records) == 2 and {r["api"] for r in records} == {"openai-responses"}


AGENT = """
import asyncio, sys
from agents import Agent, Runner, function_tool, set_default_openai_client, set_tracing_disabled
from openai import AsyncOpenAI

@function_tool
def get_weather(city: str) -> str:
    \"\"\"The weather in a city.\"\"\"
    return f"22 C and sunny in {city}"

set_tracing_disabled(True)
set_default_openai_client(AsyncOpenAI(base_url=sys.argv[1], api_key=sys.argv[2]))
agent = Agent(name="weather", instructions="Use the tool.", model=sys.argv[3], tools=[get_weather])
print("FINAL:", asyncio.run(Runner.run(agent, "Weather in Paris?")).final_output)
"""


def test_openai_agents_runs_a_tool_using_agent_with_its_defaults(gw, upstream):
    if not (AGENTS / "agents").exists():
        pytest.skip("!!! AGENTS SDK TEST SKIPPED: pip install --target .ci/agents "
                    "openai-agents==0.24.0 (.ci/run does) !!!")
    tool_then_answer(upstream, "get_weather", {"city": "Paris"})
    out = run([sys.executable, "-c", AGENT, gw.url + "/openai/v1", TENANT_KEY, MODEL],
              env={**os.environ, "PYTHONPATH": str(AGENTS)})
    assert "FINAL: The tool said:" in out and "22 C and sunny in Paris" in out, out[-2000:]
    assert upstream.requests[0].json["tools"][0]["name"] == "get_weather"
