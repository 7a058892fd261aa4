"""Fixtures (flaskr style ``app``, ``client``, ``runner``): mock upstreams and real gateways, both
gevent servers on loopback, and a scan that fails the run if a secret leaks anywhere.

The e2e process runs monkey-patched, like ``python app.py``: the SDK clients' blocking sockets
yield to the servers' greenlets.
"""
# The SDKs' HTTP stack may import trio lazily, and trio needs select.epoll, which gevent's patching
# removes: import them first. Their sockets are looked up at call time, so they are still patched.
import anthropic  # noqa: F401
import openai  # noqa: F401

try:
    import trio  # noqa: F401
except ImportError:
    pass
from gevent import monkey

monkey.patch_all()

import shutil
from pathlib import Path

import flask
import pytest

from ccgate import create_app
from tests.helpers import DISABLED_KEY, FIXTURES, OTHER_KEY, TENANT_KEY, UPSTREAM_KEY, upstream_entry, write_config
from tests.e2e.servers import REDIS, RedisServer, RunningGateway
from tests.mock_upstream import MockUpstream


@pytest.fixture
def make_mock():
    mocks = []

    def factory(name: str = "mock") -> MockUpstream:
        m = MockUpstream(name).start()
        mocks.append(m)
        return m

    yield factory
    for m in mocks:
        m.stop()


@pytest.fixture
def make_gateway(tmp_path):
    gateways = []

    def factory(upstreams: list[dict], **config) -> RunningGateway:
        config_dir = write_config(tmp_path / f"config{len(gateways)}", upstreams, **config)
        gw = RunningGateway(create_app(config_dir, tmp_path / "data"))
        gateways.append(gw)
        return gw

    yield factory
    for gw in gateways:
        gw.stop()


@pytest.fixture
def redis_server(tmp_path):
    if not REDIS:
        pytest.skip("!!! REDIS TESTS SKIPPED: no redis-server (apt-get install redis-server) !!!")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def shared_gateways(tmp_path, redis_server):
    """A factory of in-process gateways that share one Redis."""
    made = []

    def factory(upstreams, **config):
        server = {"storage": {"type": "redis", "url": redis_server.url, "prefix": "t:"},
                  **config.pop("server", {})}
        d = write_config(tmp_path / f"cfg{len(made)}", upstreams, server=server, **config)
        gw = RunningGateway(create_app(d, tmp_path / f"data{len(made)}"))
        made.append(gw)
        return gw

    yield factory
    for gw in made:
        gw.stop()


@pytest.fixture
def upstream(make_mock):
    return make_mock("primary")


@pytest.fixture
def gw(make_gateway, upstream):
    """One gateway in front of one mock upstream."""
    return make_gateway([upstream_entry(upstream)])


@pytest.fixture
def app(tmp_path, upstream):
    """The Flask app (flaskr style) for test-client tests."""
    config_dir = write_config(tmp_path / "config", [upstream_entry(upstream)])
    application = create_app(config_dir, tmp_path / "data")
    application.config["TESTING"] = True
    yield application
    application.extensions["ccgate"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def node_config(tmp_path) -> Path:
    """A copy of the Node CCGate's example config files, as a user would have them."""
    target = tmp_path / "node-config"
    target.mkdir()
    src = FIXTURES / "ccgate-node" / "config"
    for f in src.iterdir():
        shutil.copy(f, target / f.name.removesuffix(".example"))
    return target


# Every secret the suite configures anywhere (keys, passwords, tokens).
SECRETS = (TENANT_KEY, OTHER_KEY, DISABLED_KEY, UPSTREAM_KEY, "s3cret-Passw0rd", "browser-test-pw-1",
           "admin-pw-123", "hashed-pw", "scrape-token-1", "sk-upstream-raw-123",
           "sk-ccg-added-while-running-123")


class _Recorder:
    """Keeps every byte a gateway response sent, streamed bodies included."""

    def __init__(self):
        self.seen: list[bytes] = []

    def __call__(self, sender, response, **_):
        self.seen.append(str(response.status_code).encode() + b" " + str(response.headers).encode())
        if response.is_streamed:
            response.response = _RecordingBody(response.response, self.seen)
        else:
            self.seen.append(response.get_data())


class _RecordingBody:
    def __init__(self, body, sink):
        self.body, self.sink = body, sink

    def __iter__(self):
        for chunk in self.body:
            self.sink.append(chunk if isinstance(chunk, bytes) else str(chunk).encode())
            yield chunk

    def close(self):
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


@pytest.fixture(scope="session", autouse=True)
def no_secret_leaks(tmp_path_factory):
    """Fails the run if a configured secret appears in any response or any log line."""
    recorder = _Recorder()
    started = []

    def count(sender, **_):
        started.append(1)
    flask.request_finished.connect(recorder)
    flask.request_started.connect(count)
    yield
    flask.request_finished.disconnect(recorder)
    flask.request_started.disconnect(count)
    if started:
        assert recorder.seen, "the leak scan saw no response: its hook is not wired"
    leaks = []
    for blob in recorder.seen:
        leaks += [s for s in SECRETS if s.encode() in blob]
    base = tmp_path_factory.getbasetemp()
    for log_file in list(base.rglob("*.log")) + list(base.rglob("*.log.[0-9]")):
        text = log_file.read_text(errors="replace")
        leaks += [f"{s} in {log_file}" for s in SECRETS if s in text]
    assert not leaks, f"secrets leaked: {sorted(set(leaks))[:10]}"
